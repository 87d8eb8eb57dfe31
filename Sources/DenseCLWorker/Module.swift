/// Module anchor for DenseCLWorker; see docs/architecture.md for what lives here.
enum DenseCLWorkerModule {}
