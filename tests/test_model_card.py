"""tools/model_card.py: every figure on the card comes from the run's files and the eval report."""

import yaml

from tools.model_card import card


def test_card_states_the_run_and_the_validation_figures(tmp_path):
    (tmp_path / "summary.yaml").write_text(yaml.safe_dump({
        "classes": ["dog", "cat"], "images": {"train": 90, "val": 10}, "data": ["/x/animals"],
        "epochs_done": 2, "best_epoch": 2, "class_mask": False}))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"settings": {
        "alpha": 1.0, "seed": 0, "val_split": 0.1, "optimizer": "sgd", "lr": 0.01, "warmup_epochs": 1,
        "schedule": "cosine", "epochs": 3, "batch_size": 32, "weight_decay": 5e-4, "precision": "float32",
        "augment": True}}))
    (tmp_path / "log.csv").write_text(
        "epoch,lr,train_loss,val_loss,val_map,val_map07,seconds\n"
        "1,0.01,9.5,8.0,0.10,0.12,600\n2,0.005,7.25,6.5,0.4567,0.5,660\n")
    report = {"images": 10, "map": 0.4567, "map_voc07": 0.5, "per_class": [
        {"class": "dog", "positives": 7, "ap": 0.6134, "ap_voc07": 0.62},
        {"class": "cat", "positives": 0, "ap": None, "ap_voc07": None}]}
    text = card(tmp_path, report, "a test machine", ["a note"])
    assert "2 of 3 epochs, 21 minutes on a test machine" in text
    assert "epoch 2 (best validation mAP)" in text
    assert "| dog | 7 | 61.3 | 62.0 |" in text and "| cat | 0 | n/a | n/a |" in text
    assert "| **mean** | | **45.7** | **50.0** |" in text
    assert "| 2 | 5.00e-03 | 7.250 | 6.500 | 45.7 | 50.0 | 11.0 |" in text
    assert "90 training and 10 validation images" in text and "- a note" in text
