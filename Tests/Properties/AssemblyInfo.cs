// The tests run the Linux-only silo.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
