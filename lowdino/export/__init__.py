"""Deployment artifacts: ONNX (fp32, int8) and TorchScript exports, each checked against PyTorch."""
