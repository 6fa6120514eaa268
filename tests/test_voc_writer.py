"""runtime.voc_writer: what the snapshots and `autolabel` write reads back as labelImg and the trainer read it."""

from runtime.voc_writer import annotation_text, append_object, blank_annotation
from trainer.voc_xml import parse_annotation_bytes


def test_objects_read_back_1_based_inside_the_image_with_their_flags():
    root = blank_annotation("a.jpg", "imgs", (120, 160), database="test")
    append_object(root, "person", (20.4, 9.6, 60.0, 110.2), (120, 160))
    append_object(root, "dog", (-5.0, -3.0, 170.0, 130.0), (120, 160), difficult=True, extra={"autolabel_score": "0.3"})
    text = annotation_text(root)
    assert text.endswith("</annotation>\n") and "\n  <object>" in text  # indented like labelImg's files
    read = parse_annotation_bytes(text.encode(), "a.xml")
    assert read.filename == "a.jpg" and read.size == (160, 120)
    person, dog = read.objects
    assert (person.name, person.box, person.difficult) == ("person", (21, 11, 61, 111), False)
    assert (dog.name, dog.box, dog.difficult) == ("dog", (1, 1, 160, 120), True)  # clipped to the image
    assert "<autolabel_score>0.3</autolabel_score>" in text
