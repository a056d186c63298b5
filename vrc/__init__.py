"""Generated gRPC/protobuf code of the vrc API (sources in proto/vrc/)."""
