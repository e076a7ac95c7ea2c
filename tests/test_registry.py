"""The method registry: the generated index is fresh, signatures describe methods."""

from __future__ import annotations

from repohost.methods import index
from repohost.rpc.registry import all_methods


def test_method_index_is_fresh() -> None:
    assert index.INDEX.read_text() == index.render(), (
        "run `python -m repohost.methods.index` and commit shared/repohost/methods/_index.py"
    )


def test_every_method_has_a_summary_and_typed_parameters() -> None:
    for name, method in all_methods().items():
        assert method.summary, f"{name} needs a docstring"
        for param in method.params:
            assert param.annotation is not None, f"{name}.{param.name} needs a type"


def test_dispatcher_knows_no_method() -> None:
    from pathlib import Path

    import repohost.rpc.dispatcher as dispatcher

    source = Path(dispatcher.__file__).read_text()
    for name in all_methods():
        assert f'"{name}"' not in source
