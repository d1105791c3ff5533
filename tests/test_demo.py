"""The bundled demo dataset loads, and is what its docs and ATTRIBUTION.md say."""

from labelwise.demo import DEMO_COLUMNS, DEMO_LABELS, demo_path, load_demo


def test_demo_file_ships_inside_the_package_and_is_small():
    path = demo_path()
    assert path.name == "support_tickets.csv"
    assert path.parent.name == "demo"
    assert path.stat().st_size < 200_000
    assert (path.parent / "ATTRIBUTION.md").is_file()


def test_demo_loads_with_its_five_labels_unique_ids_and_both_splits():
    frame = load_demo()
    assert tuple(frame.columns) == DEMO_COLUMNS
    assert len(frame) == 838
    assert sorted(frame.label.unique()) == list(DEMO_LABELS)
    assert frame.id.is_unique
    assert frame.id.str.fullmatch(r"t\d{5}").all()
    assert frame.split.value_counts().to_dict() == {"train": 638, "test": 200}
    assert (frame.text.str.len() > 0).all()
    # Every split holds every label, and the head of the frame mixes them.
    assert (frame.groupby("split").label.nunique() == 5).all()
    assert frame.head(20).label.nunique() >= 4


def test_attribution_names_source_authors_and_licence():
    notice = (demo_path().parent / "ATTRIBUTION.md").read_text(encoding="utf-8")
    for needle in ("BANKING77", "Casanueva", "CC BY 4.0", "What was changed"):
        assert needle in notice
