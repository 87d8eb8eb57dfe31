/// Module anchor for SafeTensors; see docs/architecture.md for what lives here.
enum SafeTensorsModule {}
