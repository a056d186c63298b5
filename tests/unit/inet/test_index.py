"""The ordered index under address control: first/last stay cheap after many deletions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from router.inet.addr import OrderedIndex
from tests.unit.inet.support import Rig, ip, make_if


def test_ordered_index_repacks_after_front_deletions_and_keeps_order() -> None:
    index: OrderedIndex[int, str] = OrderedIndex()
    for key in range(1000):
        index[key] = str(key)
    for key in range(990):
        del index[key]
        assert index._holes <= max(16, len(index)) + 1
    assert list(index) == list(range(990, 1000))
    assert index.first() == "990"


def test_ordered_index_discard_ignores_absent_keys() -> None:
    index: OrderedIndex[int, None] = OrderedIndex()
    index[1] = None
    index.discard(2)
    index.discard(1)
    assert len(index) == 0 and index.first() is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 40)), max_size=200))
def test_ordered_index_behaves_like_a_dict(ops: list[tuple[bool, int]]) -> None:
    index: OrderedIndex[int, int] = OrderedIndex()
    model: dict[int, int] = {}
    for insert, key in ops:
        if insert:
            index[key] = model[key] = key * 2
        else:
            index.discard(key)
            model.pop(key, None)
        assert list(index.items()) == list(model.items())
        assert index.first() == next(iter(model.values()), None)


def test_first_address_is_found_after_deleting_many_from_the_front() -> None:
    rig = Rig()
    eth = make_if("eth0", 1)
    base = ip("10.0.0.1")
    for k in range(200):
        rig.inet.add_alias(eth, base + k, ip("255.255.0.0"))
    for k in range(199):
        rig.inet.delete_alias(eth, base + k)
    info = rig.inet.info(eth)
    assert info.addrs._holes <= 17
    assert rig.inet.delete_alias(eth).addr == base + 199
