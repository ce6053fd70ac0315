"""edgecompile: trained PyTorch/ONNX models -> bit-exact power-of-two fixed-point C."""
import os

# The simulator's matrix products are small (a layer's weights times a batch of planes): BLAS
# threads cost more in start-up and spinning than they save, and on a busy machine far more.
# Set before numpy loads; a user's own setting wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

__version__ = "0.1.0"
