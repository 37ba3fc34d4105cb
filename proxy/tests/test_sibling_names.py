from types import SimpleNamespace

from proxy.sharding import sibling_names


def test_each_worker_knows_its_siblings_node_names():
    assert sibling_names("lb", None) == ()
    assert sibling_names("lb", SimpleNamespace(index=0, count=1)) == ()
    assert sibling_names("lb", SimpleNamespace(index=0, count=3)) == ("lb-1", "lb-2")
    assert sibling_names("lb-2", SimpleNamespace(index=2, count=3)) == ("lb", "lb-1")
    assert sibling_names("node-a-1", SimpleNamespace(index=1, count=2)) == ("node-a",)
