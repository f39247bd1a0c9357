"""vhdx_check.check() and rules() against the command line."""

import pytest

import vhdx_check
from conftest import IMAGES, ROOT, cli_error, cli_json


@pytest.mark.parametrize("image", IMAGES, ids=lambda p: p.name)
def test_check_document_equals_the_cli(image):
    doc = vhdx_check.check(image)
    assert doc == cli_json("check", "--format", "json", image)
    assert doc["images"][0]["verdict"] in ("accept", "reject")


def test_corpus_has_both_verdicts():
    verdicts = {vhdx_check.check(p)["images"][0]["verdict"] for p in IMAGES}
    assert verdicts == {"accept", "reject"}


def test_max_per_rule_and_policy_are_the_cli_options():
    damaged = ROOT / "corpus" / "images" / "damaged-multi.vhdx"
    assert vhdx_check.check(damaged, max_per_rule=1) == cli_json(
        "check", "--format", "json", "--max-per-rule", "1", damaged
    )
    policy = ROOT / "examples" / "policy.toml"
    for image in IMAGES:
        assert vhdx_check.check(image, policy=policy) == cli_json(
            "check", "--format", "json", "--policy", policy, image
        ), image


def test_a_file_that_is_not_vhdx_is_rejected_as_on_the_cli(tmp_path):
    junk = tmp_path / "junk.vhdx"
    junk.write_bytes(b"hello\n")
    doc = vhdx_check.check(junk)
    assert doc == cli_json("check", "--format", "json", junk)
    assert doc["images"][0]["verdict"] == "reject"
    assert doc["images"][0]["findings"][0]["rule"] == "FTI-007"


def test_a_missing_file_raises_the_cli_reason(tmp_path):
    missing = tmp_path / "missing.vhdx"
    with pytest.raises(vhdx_check.Error) as e:
        vhdx_check.check(missing)
    assert str(e.value) == cli_error("check", missing)
    assert isinstance(e.value, OSError)


def test_bad_arguments(tmp_path):
    image = IMAGES[0]
    with pytest.raises(ValueError):
        vhdx_check.check(image, max_per_rule=100_001)
    with pytest.raises(ValueError):
        vhdx_check.check(image, max_per_rule=-1)
    bad = tmp_path / "bad.toml"
    bad.write_text("fail_on = 3\n")
    with pytest.raises(vhdx_check.Error) as e:
        vhdx_check.check(image, policy=bad)
    assert str(e.value) == cli_error("check", "--policy", bad, image)


def test_rules_are_the_catalogue():
    rules = vhdx_check.rules()
    assert rules == cli_json("rules", "--format", "json")["rules"]
    assert {"FTI-007", "BAT-013"} <= {r["id"] for r in rules}


def test_chain_check_equals_the_cli(openvmm):
    child, entry = openvmm("chain-child2.avhdx")
    parents = [child.parent / p for p in entry["parents"]]
    args = [a for p in parents for a in ("--parent", p)]
    doc = vhdx_check.check(child, parents=parents)
    assert doc == cli_json("check", "--format", "json", *args, child)
    assert [i["verdict"] for i in doc["images"]] == ["accept"] * 3
    found = vhdx_check.check(child, find_parents=True)
    assert found == cli_json("check", "--format", "json", "--find-parents", child)
    assert [i["path"] for i in found["images"]][0] == str(child)
    assert len(found["images"]) == 3
