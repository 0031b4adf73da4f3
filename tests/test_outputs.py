"""SSD output order (TF1 and TF2 exports), label files and TFLite metadata labels."""

import shutil
import zipfile

import cv2

from edgecam.config import load_config
from edgecam.model.engine import OutputInfo
from edgecam.model.labels import Labels, from_metadata, infer_offset, load_file, parse_lines
from edgecam.model.loader import load_model
from edgecam.model.postprocess import decode_detections, detection_roles


def test_tf1_order_read_from_the_graph(models_dir):
    m = load_model(load_config(None, {"model": {"name": "v1_ssd", "dir": str(models_dir)}}))
    assert m.roles == {"boxes": 0, "classes": 1, "scores": 2, "count": 3}


def test_tf2_reordered_outputs_give_the_same_detections(models_dir, media):
    """TF2 exports return (scores, boxes, count, classes)-style orders under names like
    StatefulPartitionedCall:N: match by graph, name and shape, never by position."""
    m = load_model(load_config(None, {"model": {"name": "v1_ssd", "dir": str(models_dir)}}))
    img = cv2.imread(str(media / "kite_and_cold.jpg"))
    from edgecam.model.preprocess import preprocess
    tensor, transform = preprocess(img, m.engine.input, "stretch")
    outs = m.engine.run(tensor)
    expected = decode_detections(outs, m.roles, m.labels, transform, 0.5)
    assert len(expected) >= 4
    infos = m.engine.outputs
    for order in ([2, 0, 3, 1], [1, 3, 0, 2], [3, 2, 1, 0]):
        # same tensors, reordered, with TF2-style names that say nothing
        shuffled = [OutputInfo(infos[i].index, f"StatefulPartitionedCall:{k}", infos[i].shape)
                    for k, i in enumerate(order)]
        arrays = [outs[i] for i in order]
        for ops in (m.engine.ops(), []):  # with the graph, and from shapes and values alone
            roles = detection_roles(shuffled, ops)
            assert decode_detections(arrays, roles, m.labels, transform, 0.5) == expected


def test_tf2_names_when_present():
    infos = [OutputInfo(5, "detection_scores", (1, 10)), OutputInfo(6, "detection_boxes", (1, 10, 4)),
             OutputInfo(7, "num_detections", (1,)), OutputInfo(8, "detection_classes", (1, 10))]
    assert detection_roles(infos) == {"scores": 0, "boxes": 1, "count": 2, "classes": 3}


def test_label_files_map_class_ids(mirror):
    ssd = Labels(load_file(mirror / "coco_ssd_labelmap.txt"), 1)      # line 0 = ???
    coral = Labels(load_file(mirror / "coco_labels.txt"), 0)          # n/a gaps
    imagenet = Labels(load_file(mirror / "imagenet_labels.txt"), 0)   # line 0 = background
    for cid, name in [(0, "person"), (37, "kite"), (43, "bottle"), (31, "tie")]:
        assert ssd[cid] == name and coral[cid] == name
    assert ssd.is_gap(11) and coral.is_gap(11) and ssd[11] == "class 11"
    assert imagenet[0] == "background" and imagenet[1] == "tench, Tinca tinca"
    assert infer_offset(load_file(mirror / "coco_ssd_labelmap.txt"), None, "detect") == 1
    assert infer_offset(load_file(mirror / "imagenet_labels.txt"), 1001, "classify") == 0
    assert infer_offset(load_file(mirror / "imagenet_labels.txt"), 1000, "classify") == 1


def test_id_prefixed_label_files():
    assert parse_lines("0  person\n1  bicycle\n3 motorcycle\n") == ["person", "bicycle", "???", "motorcycle"]


def test_labels_from_tflite_metadata(models_dir, media, tmp_path):
    """A .tflite path with no --labels: labels come from the metadata packed in the model
    (the published V2 carries imagenet_labels.txt); a model without any gets class ids."""
    v2 = tmp_path / "any_name.tflite"
    shutil.copy(models_dir / "mobilenet_v2_1.0_224_quant.tflite", v2)
    assert from_metadata(v2)[:2] == ["background", "tench, Tinca tinca"]
    m = load_model(load_config(None, {"model": {"name": str(v2)}}))
    assert (m.task, m.name) == ("classify", "any_name")
    assert m.infer(cv2.imread(str(media / "parrot.jpg"))).classes[0].label == "macaw"

    v3 = tmp_path / "v3.tflite"
    shutil.copy(models_dir / "mobilenet_v3_small_1.0_224_uint8.tflite", v3)
    assert from_metadata(v3) is None
    m = load_model(load_config(None, {"model": {"name": str(v3)}}))
    # macaw is line 89 of imagenet_labels.txt
    assert m.infer(cv2.imread(str(media / "parrot.jpg"))).classes[0].label == "class 89"
    # packing labels the way the TFLite metadata writer does (a zip appended) is enough
    with zipfile.ZipFile(v3, "a") as z:
        z.writestr("labels.txt", (models_dir / "imagenet_labels.txt").read_text())
    m = load_model(load_config(None, {"model": {"name": str(v3)}}))
    assert m.infer(cv2.imread(str(media / "parrot.jpg"))).classes[0].label == "macaw"


def test_a_path_to_an_ssd_is_a_detector_with_labels_flag(models_dir, media, tmp_path):
    det = tmp_path / "detect.tflite"
    shutil.copy(models_dir / "ssd_mobilenet_v1_1.0_300_coco_quant.tflite", det)
    labels = str(models_dir / "coco_ssd_labelmap.txt")
    m = load_model(load_config(None, {"model": {"name": str(det), "labels": labels}}))
    assert m.task == "detect" and m.labels.offset == 1
    labels = {d.label for d in m.infer(cv2.imread(str(media / "kite_and_cold.jpg"))).detections}
    assert {"person", "kite"} <= labels
