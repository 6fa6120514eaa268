"""Import the Caffe MobileNet-SSD (chuanqi305/MobileNet-SSD) into this app's model format.

No Caffe or protobuf package: :mod:`.prototxt` parses the text format, :mod:`.wire` and
:mod:`.caffemodel` read and write the binary weights, :mod:`.netspec` turns the deploy graph
into a :class:`~models.spec.ModelSpec`, :mod:`.fold` folds BatchNorm/Scale layers, and
:mod:`.convert` loads the weights into the built network. :mod:`.random_weights` writes
seeded random ``.caffemodel`` files (the OpenCV-DNN equivalence tests and the benchmark).
"""

from .caffemodel import BinaryLayer, read_caffemodel, read_layers, write_caffemodel
from .convert import ImportResult, convert, import_caffe
from .errors import CaffeImportError, CaffemodelError, NetworkMismatchError, PrototxtError
from .labels import read_labels
from .netspec import CaffePlan, DetectionSettings, plan_from_prototxt, resolve_class_names
from .random_weights import random_blobs, write_random_caffemodel

__all__ = [
    "BinaryLayer", "CaffeImportError", "CaffePlan", "CaffemodelError", "DetectionSettings",
    "ImportResult", "NetworkMismatchError", "PrototxtError", "convert", "import_caffe",
    "plan_from_prototxt", "random_blobs", "read_caffemodel", "read_labels", "read_layers",
    "resolve_class_names", "write_caffemodel", "write_random_caffemodel",
]
