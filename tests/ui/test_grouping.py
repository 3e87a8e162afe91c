"""Denials grouped and ranked the same way for the dashboard and the static report."""

from __future__ import annotations

from sandbox.audit.grouping import durability_text, group_denials


def d(action: str, target: str, rule: str | None, result: str = "deny") -> dict[str, object]:
    return {"type": "decision", "action": action, "target": target, "rule": rule, "result": result}


def test_denials_that_matter_come_first_then_by_count() -> None:
    noise = [d("shell_exec", "id -u", None)] * 5
    secret = [d("file_read", "/w/.env", "rule 1, p.yaml:3")]
    allowed = [d("shell_exec", "ls", "rule 2, p.yaml:4", "allow")] * 9
    g = group_denials(noise + secret + allowed)
    assert [i["target"] for i in g["items"]] == ["/w/.env", "id -u"]
    assert g["by_directory"][0]["key"] == "/w/"
    assert g["by_rule"][0]["key"] == "rule 1, p.yaml:3"
    assert {x["key"] for x in g["by_program"]} == {"id", "(not recorded)"}
    assert g["items"][1]["count"] == 5


def test_durability_is_written_for_people() -> None:
    text = durability_text({"mode": "batch", "fsync_window_ms": 100})
    assert "100 ms" in text and "{" not in text
    assert "every entry" in durability_text({"mode": "strict", "fsync_window_ms": 0})


def test_the_static_report_ranks_and_words_the_same_way(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sandbox.audit.reader import SessionInfo
    from sandbox.audit.report import render_html

    start = {"durability": {"mode": "batch", "fsync_window_ms": 100}, "argv": ["x"]}
    noise = [d("shell_exec", "id -u", None)] * 5
    secret = [d("file_read", "/w/.env", "rule 1, p.yaml:3")]
    page = render_html(
        directory=tmp_path,
        sessions=[SessionInfo("s1", start)],
        decisions=noise + secret,
        verdict=(True, "intact"),
    )
    assert page.index("/w/.env") < page.index("id -u")  # the secret first, though rarer
    assert "{&#x27;mode&#x27;" not in page and "{'mode'" not in page
    assert "batched: entries reach the disk" in page
