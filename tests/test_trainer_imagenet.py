"""Training from the ImageNet backbone: `train --imagenet`, partial freezing, fine-tuning a
separable-head (lite0) model onto other classes."""

from __future__ import annotations

import numpy as np
import pytest
from trainer_helpers import make_voc_folder

import main
from models import build_model, lite0_spec
from models.model_file import load_model


@pytest.fixture(scope="module")
def imagenet_state():
    from models.efficientnet_lite import keras_weight_map, load_state_dict

    return keras_weight_map(load_state_dict())


@pytest.mark.slow
def test_train_imagenet_starts_from_imagenet_and_keeps_frozen_blocks(tmp_path, capsys, imagenet_state):
    folder = make_voc_folder(tmp_path / "voc", 12, seed=2)
    run = tmp_path / "run"
    args = ["train", "--data", str(folder), "--out", str(run), "--imagenet", "--freeze-through", "block11",
            "--epochs", "1", "--batch", "4", "--no-progress", "--workers", "2", "--optimizer", "adam"]
    assert main.main(args) == 0
    out = capsys.readouterr().out
    assert "backbone from ImageNet: 98 EfficientNet-Lite0 layers" in out and "lite0 layout" in out
    model = load_model(run / "last.keras")
    assert model.spec.layout == "lite0" and model.spec.backbone.kind == "efficientnet_lite0"
    # frozen through block11: stem and blocks 1-11 are the ImageNet weights to the bit ...
    for name in ("lite_stem", "lite_stem_bn", "lite_b1_dw", "lite_b11_project", "lite_b11_project_bn"):
        for got, want in zip(model.get_layer(name).get_weights(), imagenet_state[name]):
            np.testing.assert_array_equal(got, want, err_msg=name)
    # ... and the later blocks trained
    for name in ("lite_b12_expand", "lite_top"):
        assert not np.array_equal(model.get_layer(name).get_weights()[0], imagenet_state[name][0]), name


def test_imagenet_option_errors_are_one_line(tmp_path, capsys):
    folder = make_voc_folder(tmp_path / "voc", 4, seed=3)
    base = ["train", "--data", str(folder), "--no-progress"]
    other = tmp_path / "other.keras"
    other.write_bytes(b"x")
    assert main.main(base + ["--out", str(tmp_path / "a"), "--imagenet", "--from", str(other)]) == 2
    assert main.main(base + ["--out", str(tmp_path / "b"), "--imagenet", "--layout", "seed"]) == 2
    assert main.main(base + ["--out", str(tmp_path / "c"), "--layout", "lite0", "--freeze-through", "block20"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3
    assert "--from" in err[0] and "the network is the model's own" in err[0]
    assert "--imagenet" in err[1] and "layout seed" in err[1]
    assert "--freeze-through" in err[2] and "'block20'" in err[2] and "block16, top" in err[2]
    assert not (tmp_path / "c" / "config.yaml").exists()


def test_partial_freezing_follows_network_order():
    from trainer.finetune import backbone_position, set_backbone_trainable

    model = build_model(lite0_spec(["a"]))
    set_backbone_trainable(model, True, "block5")
    trainable = {layer.name: layer.trainable for layer in model.layers if layer.weights}
    assert not trainable["lite_stem"] and not trainable["lite_b5_project_bn"]
    assert trainable["lite_b6_expand"] and trainable["lite_top"] and trainable["cls_block5"]
    set_backbone_trainable(model, False, "block5")  # a frozen phase freezes the whole backbone
    assert not model.get_layer("lite_top").trainable and model.get_layer("extra1_1x1").trainable
    assert [backbone_position(n) for n in ("conv1", "conv_dw_3", "conv_pw_13_bn", "lite_b16_dw", "lite_top_bn",
                                           "box_block5", "extra1_dw")] == [0, 3, 13, 16, 1000, None, None]


def test_finetuning_a_separable_head_model_maps_classes():
    import keras

    from trainer.finetune import is_class_predictor, transfer_weights

    keras.utils.set_random_seed(5)
    source = build_model(lite0_spec(["person", "car", "dog"]))
    target = build_model(lite0_spec(["dog", "raccoon"]))
    fresh = {layer.name: [w.copy() for w in layer.get_weights()] for layer in target.layers}
    report = transfer_weights(source, target)
    assert report.carried_classes == ["dog"] and report.new_classes == ["raccoon"]
    assert len(report.class_layers) == 6  # one predictor per head; their depthwise stages copy whole
    assert is_class_predictor("cls_top") and not is_class_predictor("cls_top_dw_bn")
    np.testing.assert_array_equal(target.get_layer("cls_top_dw").get_weights()[0],
                                  source.get_layer("cls_top_dw").get_weights()[0])
    new, old = target.get_layer("cls_top").get_weights()[0], source.get_layer("cls_top").get_weights()[0]
    new_v, old_v = new.reshape(new.shape[:-1] + (6, 3)), old.reshape(old.shape[:-1] + (6, 4))
    np.testing.assert_array_equal(new_v[..., 1], old_v[..., 3])  # dog
    f = fresh["cls_top"][0]
    np.testing.assert_array_equal(new_v[..., 2], f.reshape(f.shape[:-1] + (6, 3))[..., 2])  # raccoon: fresh
