"""The detector's model core: spec, network, default boxes, box coding, NMS, results, files.

Imports only keras, numpy and the standard library.
"""

from .box_coder import centers_to_corners, corners_to_centers, decode, decode_ops, encode, pairwise_iou
from .detections import Detections
from .layouts import VOC_CLASSES, caffe_spec, lite0_spec, seed_spec
from .nms import batched_nms, nms
from .postprocess import PostprocessConfig, select_detections
from .priors import default_boxes, num_default_boxes
from .spec import BackboneSpec, ExtraSpec, HeadSpec, ModelSpec, PreprocessSpec, SpecError
from .ssd import SSDModel, build_model

__all__ = [
    "BackboneSpec", "Detections", "ExtraSpec", "HeadSpec", "ModelSpec", "PostprocessConfig",
    "PreprocessSpec", "SSDModel", "SpecError", "VOC_CLASSES", "batched_nms", "build_model",
    "caffe_spec", "centers_to_corners", "corners_to_centers", "decode", "decode_ops",
    "default_boxes", "encode", "lite0_spec", "nms", "num_default_boxes", "pairwise_iou", "seed_spec",
    "select_detections",
]
