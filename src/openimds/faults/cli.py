"""`openimds faults add|list|remove|clear|boot`: fault rules of a running server, through
its admin API (docs/faults.md)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import click

from openimds.cli.options import (
    JSON_OPTION,
    SECONDS,
    AdminTarget,
    admin_call,
    admin_options,
)


def _statuses(value: str) -> list[int]:
    try:
        return [int(part) for part in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected statuses like 410,410,200, got {value!r}") from None


class _Latency(click.ParamType["float | list[float]"]):
    """`0.5` or `0.2-1.5` (seconds, each as SECONDS takes it)."""

    name = "latency"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float | list[float]:
        if not isinstance(value, str) or "-" not in value.lstrip("-"):
            return SECONDS.convert(value, param, ctx)
        low, _, high = value.partition("-")
        if not low or not high:
            self.fail(f"expected SECONDS or LOW-HIGH, got {value!r}", param, ctx)
        return [SECONDS.convert(low, param, ctx), SECONDS.convert(high, param, ctx)]


def _what(rule: dict[str, Any]) -> str:
    kind = rule["kind"]
    if kind == "status":
        extra = f" Retry-After {rule['retry_after']}" if "retry_after" in rule else ""
        return f"{rule['status']}{extra}"
    if kind == "sequence":
        return ",".join(str(s) for s in rule["sequence"])
    if kind == "latency":
        latency = rule["latency"]
        return f"+{latency[0]}-{latency[1]}s" if isinstance(latency, list) else f"+{latency}s"
    return str(kind)


def _table(rules: list[dict[str, Any]]) -> str:
    if not rules:
        return "no fault rules"
    rows = [("ID", "VM", "PATH", "DOES", "HITS", "UNTIL")]
    for r in rules:
        times = r.get("times") or (len(r["sequence"]) if "sequence" in r else None)
        hits = f"{r['hits']}/{times}" if times else str(r["hits"])
        until = (r["until"] or "-") + (" (spent)" if r["spent"] else "")
        rows.append((r["id"], r["vm"] or "*", r["path"], _what(r), hits, until))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


@click.group("faults")
def faults() -> None:
    """Fault injection on a running server: error statuses, scripted sequences, latency,
    dropped or hung connections, a boot window."""


@faults.command("add")
@click.option("--path", default="*", show_default=True, help="Glob on the request path.")
@click.option("--vm", help="Only this VM (default: every caller).")
@click.option("--status", type=int, help="Answer with this status (410, 429, 500, 503...).")
@click.option("--sequence", type=_statuses, help="One status per request, e.g. 410,410,200.")
@click.option("--latency", type=_Latency(), help="Delay answers: SECONDS or LOW-HIGH.")
@click.option("--close", is_flag=True, help="Hang up without an answer.")
@click.option("--hang", is_flag=True, help="Hold the connection open without an answer.")
@click.option("--retry-after", type=int, help="Retry-After seconds with --status/--sequence.")
@click.option("--times", type=int, help="Fire this many times, then stop.")
@click.option("--after", type=SECONDS, help="Seconds before the rule starts.")
@click.option("--window", type=SECONDS, help="Seconds the rule lasts once started.")
@click.option("--id", "rule_id", help="Name the rule (default: generated).")
@admin_options
@JSON_OPTION
def add(admin: AdminTarget, as_json: bool, rule_id: str | None, **opts: Any) -> None:
    """Add a fault rule; prints its id."""
    body = {k: v for k, v in opts.items() if v is not None and v is not False}
    if rule_id is not None:
        body["id"] = rule_id
    answer = admin_call(admin, "POST", "/faults", body)
    click.echo(json.dumps(answer, indent=2) if as_json else answer["rule"]["id"])


@faults.command("list")
@admin_options
@JSON_OPTION
def list_rules(admin: AdminTarget, as_json: bool) -> None:
    """The rules in the order they apply, with their hits."""
    answer = admin_call(admin, "GET", "/faults")
    click.echo(json.dumps(answer, indent=2) if as_json else _table(answer["rules"]))


@faults.command("remove")
@click.argument("rule_id")
@admin_options
def remove(rule_id: str, admin: AdminTarget) -> None:
    """Remove the rule RULE_ID."""
    admin_call(admin, "DELETE", f"/faults/{quote(rule_id, safe='')}")
    click.echo(f"{rule_id}: removed")


@faults.command("clear")
@admin_options
def clear(admin: AdminTarget) -> None:
    """Remove every rule."""
    answer = admin_call(admin, "DELETE", "/faults")
    click.echo(f"removed {answer['removed']} rule(s)")


@faults.command("boot")
@click.option("--seconds", type=SECONDS, default=30.0, show_default=True, help="Window length.")
@admin_options
def boot(seconds: float, admin: AdminTarget) -> None:
    """Start a boot window: every call gets 410 for SECONDS from now."""
    answer = admin_call(admin, "POST", "/faults/boot", {"seconds": seconds})
    click.echo(f"every call gets 410 until {answer['rule']['until']}")


COMMANDS = (faults,)
