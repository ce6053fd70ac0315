"""edgecompile: trained PyTorch/ONNX models -> bit-exact power-of-two fixed-point C."""
__version__ = "0.1.0"
