// The silo runs on Linux only: the embedded development PostgreSQL switches OS users with runuser,
// and the ONNX Runtime package is the Linux (CUDA/CPU) build.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
