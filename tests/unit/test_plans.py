"""Plans as data: the built-in table, or ORBIN_PLANS_FILE (JSON or YAML), validated."""

from __future__ import annotations

import json

import pytest

from tenancy import config
from tenancy.errors import InvalidInput
from tenancy.plans import BUILT_IN, PlansFileError, get_plan, load_plans, parse_plans, require_plan

GOOD = {
    "plans": {
        "free": {"monthlyExecutions": 10, "requestsPerMinutePerKey": 60,
                 "requestsPerMinutePerOrg": 120, "concurrency": 3, "retentionDays": 7},
        "pro": {"monthlyExecutions": 5000, "requestsPerMinutePerKey": 1000,
                "requestsPerMinutePerOrg": 3000, "concurrency": 17, "retentionDays": 30,
                "stripeLookupKey": "pro_monthly", "members": 20, "overage": True},
    }
}  # fmt: skip


def test_json_and_yaml_give_the_same_plans() -> None:
    import yaml

    from_json = parse_plans(json.dumps(GOOD))
    from_yaml = parse_plans(yaml.safe_dump(GOOD))
    assert from_json == from_yaml
    pro = from_json["pro"]
    assert (pro.monthly_executions, pro.concurrency, pro.retention_days) == (5000, 17, 30)
    assert pro.lookup_key == "pro_monthly" and pro.overage and pro.members == 20
    assert from_json["free"].lookup_key == "free"  # default: the plan's name


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        ({"plans": {"pro": GOOD["plans"]["pro"]}}, "must define a 'free' plan"),
        ({"plans": {"free": {**GOOD["plans"]["free"], "concurrency": 0}}}, "free.concurrency"),
        ({"plans": {"free": {**GOOD["plans"]["free"], "concurency": 3}}}, "free.concurency"),
        ({"plans": {"free": {"monthlyExecutions": 1}}}, "free.retentionDays"),
        ({"plan": {}}, "plans"),
        (
            {
                "plans": {
                    "free": {**GOOD["plans"]["free"], "stripeLookupKey": "x"},
                    "pro": {**GOOD["plans"]["pro"], "stripeLookupKey": "x"},
                }
            },
            "share a stripeLookupKey",
        ),
    ],  # fmt: skip
)
def test_a_bad_file_is_refused_naming_the_field(doc: dict, says: str) -> None:
    with pytest.raises(PlansFileError) as err:
        parse_plans(json.dumps(doc), source="ORBIN_PLANS_FILE /etc/plans.json")
    assert says in err.value.message and "/etc/plans.json" in err.value.message


def test_not_json_nor_yaml() -> None:
    with pytest.raises(PlansFileError, match="neither JSON nor YAML"):
        parse_plans("plans: [unclosed")


def test_the_file_replaces_the_table(tmp_path, monkeypatch) -> None:
    path = tmp_path / "plans.json"
    path.write_text(json.dumps(GOOD))
    monkeypatch.setenv("ORBIN_PLANS_FILE", str(path))
    config.reset_settings()
    try:
        assert set(load_plans()) == {"free", "pro"}
        assert get_plan("free").monthly_executions == 10
        assert get_plan("business").name == "free"  # unknown names fall back to free
        with pytest.raises(InvalidInput, match="unknown plan 'business'"):
            require_plan("business")
    finally:
        monkeypatch.delenv("ORBIN_PLANS_FILE")
        config.reset_settings()
    assert load_plans() == BUILT_IN


def test_a_missing_file_is_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ORBIN_PLANS_FILE", str(tmp_path / "nope.json"))
    config.reset_settings()
    try:
        with pytest.raises(PlansFileError, match="nope.json"):
            load_plans()
    finally:
        monkeypatch.delenv("ORBIN_PLANS_FILE")
        config.reset_settings()
