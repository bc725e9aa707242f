"""`digest rank …`: train and evaluate the learned ranking."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click

from pipeline.interfaces.cli.base import Context, _report, cli, date_option, json_option, pass_ctx


@cli.group()
def rank() -> None:
    """The learned ranking of a day's candidates."""


@rank.command(name="train")
@date_option
@click.option("--force", is_flag=True, help="Train even when the history has not changed.")
@json_option
@pass_ctx
def rank_train(ctx: Context, day: date | None, force: bool, as_json: bool) -> None:
    """Train the ranking model from this newsletter's notes, sent issues, studio picks and
    dismissals, and collected candidates (`digest collect` does it when they changed)."""
    from pipeline.services import ranking

    report = ranking.train(ctx.settings, ctx.day(day), ctx.runtime(), force=force)
    _report(report, as_json)


@rank.command(name="eval")
@click.option("--train", "train_file", type=click.Path(path_type=Path), metavar="DAYS",
              help="Listing days with picks to learn from before the test days (JSON lines).")
@click.option("--history", "history_file", type=click.Path(path_type=Path), metavar="PICKS",
              help="Earlier picks, positives only (JSON lines).")
@click.option("--test", "test_file", type=click.Path(path_type=Path), metavar="DAYS",
              required=True, help="Listing days to rank, each with a model of the days before it.")
@click.option("--retrain-days", type=click.IntRange(1, 366), default=7, show_default=True,
              help="Retrain once this many days have passed since the last training.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random order.")
@click.option("--json", "as_json", is_flag=True, help="Print rankings and metrics as JSON.")
@pass_ctx
def rank_eval(ctx: Context, train_file: Path | None, history_file: Path | None, test_file: Path,
              retrain_days: int, seed: int, as_json: bool) -> None:
    """Rank each test day online and compare with the tag rules' and a random order."""
    from pipeline.collect.tags import compile_rules, match_paper
    from pipeline.core.models import Paper
    from pipeline.curate import rank_eval as evaluation
    from pipeline.curate.ranking import RankPaper

    history = evaluation.read_history(history_file) if history_file is not None else ()
    train = evaluation.read_days(train_file) if train_file is not None else ()
    test = evaluation.read_days(test_file)
    rules = compile_rules(ctx.settings.tags)

    def tag_score(p: RankPaper) -> float:
        return match_paper(Paper(str(p.arxiv_id), p.title, p.authors, p.abstract), rules).score

    report = evaluation.evaluate(history, train, test, tag_score, retrain_days=retrain_days,
                                 seed=seed)
    if as_json:
        click.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
        return
    for day, ids in report.rankings.items():
        click.echo(f"{day.isoformat()} {' '.join(ids)}")
    learned = report.metrics["learned"]
    click.echo(f"\n{len(report.rankings)} test days, {learned.days} with picks; "
               f"{len(report.retrained)} trainings; in the tag rules' order for want of a "
               f"model: {len(report.fallback_days)}; earlier picks used: {report.history_used}")
    click.echo(f"{'method':<10} {'recall@10':>9} {'recall@20':>9} {'nDCG@10':>8} {'MRR':>6}")
    for name, m in report.metrics.items():
        click.echo(f"{name:<10} {m.recall_at_10:>9.3f} {m.recall_at_20:>9.3f} "
                   f"{m.ndcg_at_10:>8.3f} {m.mrr:>6.3f}")
