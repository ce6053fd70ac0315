"""The op set.  Adding an op: see README "Adding an op" (file here, kernel in
runtime_c, import below, frontend mapping, test)."""
from .base import OP_TYPES, Op, op_class, register  # noqa: F401
from . import conv2d, linear, pool2d, reshape, relu, float_only, sparse  # noqa: F401  (registration)
from .conv2d import Conv2d  # noqa: F401
from .linear import Linear  # noqa: F401
from .pool2d import AvgPool2d, MaxPool2d  # noqa: F401
from .reshape import Reshape  # noqa: F401
from .relu import Relu  # noqa: F401
from .float_only import BatchNorm, Identity  # noqa: F401
from .sparse import SparseConv2d, SparseLinear  # noqa: F401
