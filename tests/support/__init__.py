"""The test harness: real kernels, fake SDKs made of asyncio and threads, subprocess targets,
and the mutation runner (see tests/MUTATIONS.md)."""
