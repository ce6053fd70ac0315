"""The op set, one file per op.  Adding an op: docs/adding-an-op.md (the op's file here, its
kernel in runtime_c, its import below, its frontend converter, tests, docs)."""
from .base import OP_TYPES, Op, op_class, register  # noqa: F401
from . import (add, clip, concat, conv2d, float_only, leaky_relu, linear, lut, mul, pool2d, relu, reshape,  # noqa: F401
               packed, recurrent, slice, affine, dual_linear, gated_linear, lerp, softmax, sparse, transpose)  # (registration)
from .conv2d import Conv2d  # noqa: F401
from .linear import Linear  # noqa: F401
from .pool2d import AvgPool2d, MaxPool2d  # noqa: F401
from .reshape import Reshape  # noqa: F401
from .relu import Relu  # noqa: F401
from .float_only import BatchNorm, Identity, Pad  # noqa: F401
from .sparse import SparseConv2d, SparseDualLinear, SparseGatedDualLinear, SparseLinear  # noqa: F401
from .add import Add  # noqa: F401
from .clip import Clip  # noqa: F401
from .concat import Concat  # noqa: F401
from .lut import Lut  # noqa: F401
from .mul import Mul  # noqa: F401
from .softmax import Softmax  # noqa: F401
from .transpose import Transpose  # noqa: F401
from .packed import PackedConv2d, PackedLinear  # noqa: F401
from .affine import Affine  # noqa: F401
from .dual_linear import DualLinear  # noqa: F401
from .gated_linear import GatedDualLinear  # noqa: F401
from .lerp import Lerp  # noqa: F401
from .recurrent import Recurrent  # noqa: F401
from .slice import Slice  # noqa: F401
from .leaky_relu import LeakyRelu  # noqa: F401
