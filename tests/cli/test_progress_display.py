"""How ``make``'s generate bar moves between polls (a pure model, given the times)."""

from __future__ import annotations

from chanjing_avatar.cli._present import ProgressTween


def test_the_bar_moves_on_between_polls_at_the_tasks_pace() -> None:
    tween = ProgressTween()
    tween.observe(0.0, 1)
    assert tween.at(1.0) == 1  # one report: no pace known yet
    tween.observe(2.0, 21)  # 10 % a second
    assert tween.at(2.0) == 21
    assert tween.at(3.0) == 31 and tween.at(5.0) == 51  # moves while nothing is reported
    assert tween.at(60.0) == 99  # never claims the finish
    tween.observe(6.0, 50)  # a report behind what was shown: the bar does not go back
    assert tween.at(6.0) == 99
    tween.observe(7.0, 100)
    assert tween.at(7.0) == 100


def test_a_task_that_starts_over_starts_the_bar_over() -> None:
    tween = ProgressTween()
    tween.observe(0.0, 10)
    tween.observe(1.0, 40)
    tween.observe(2.0, 1)
    assert tween.at(2.5) == 1
    tween.observe(3.0, 11)
    assert tween.at(4.0) == 21
