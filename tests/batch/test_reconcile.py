from chanjing_avatar.batch.reconcile import Listed, decide, estimate_offset, window

T = 1_800_000_000.0
SETTLE = 5.0


def _decide(listed, claimed=frozenset(), *, outcome_at=None, now=T + 100, guard=30.0):
    return decide(
        intent_at=T,
        outcome_at=outcome_at,
        now=now,
        listed=[Listed(i, c) for i, c in listed],
        claimed=set(claimed),
        settle=SETTLE,
        offset=(-1.0, 1.0),
        guard=guard,
    )


def test_window_covers_send_to_settle_with_offset_and_truncation():
    w = window(T + 0.4, None, settle=SETTLE, offset=(-1.0, 1.0))
    assert w.start <= T - 1 and w.end >= T + SETTLE + 1
    # A later noticed outcome extends the window.
    assert window(T, T + 50, settle=SETTLE, offset=(-1, 1)).end >= T + 51


def test_waits_until_the_server_can_no_longer_act():
    d = _decide([], now=T + 1)
    assert d.kind == "wait" and d.wait_until is not None and d.wait_until > T + SETTLE


def test_no_task_in_window_means_recreate():
    d = _decide([("old", T - 500), ("later", T + 500)])
    assert d.kind == "recreate"


def test_one_unclaimed_task_is_adopted():
    d = _decide([("mine", T + 1), ("other-row", T + 2)], claimed={"other-row"})
    assert d.kind == "adopt" and d.task_id == "mine"


def test_claimed_tasks_inside_window_are_not_candidates():
    d = _decide([("a", T + 1), ("b", T + 3)], claimed={"a", "b"})
    assert d.kind == "recreate"


def test_two_unclaimed_tasks_are_undecidable():
    d = _decide([("x", T + 1), ("y", T + 2)])
    assert d.kind == "undecidable"
    assert set(d.candidates) == {"x", "y"}


def test_one_candidate_with_foreign_activity_nearby_is_undecidable():
    d = _decide([("x", T + 1), ("foreign", T + SETTLE + 20)])
    assert d.kind == "undecidable" and d.nearby == ("foreign",)


def test_foreign_far_away_does_not_matter():
    d = _decide([("x", T + 1), ("foreign", T + 500)])
    assert d.kind == "adopt"


def test_task_just_before_the_intent_is_outside():
    d = _decide([("before", T - 10)], guard=0)
    assert d.kind == "recreate"


def test_estimate_offset_intersects_samples():
    lo, hi = estimate_offset([(T, T + 0.2, T + 10), (T + 5, T + 5.1, T + 15)])
    assert lo <= 9.9 and hi >= 10.0 and hi - lo < 2.5
    assert estimate_offset([]) == (-2.0, 2.0)
    # Contradicting samples (clock jump) fall back.
    assert estimate_offset([(T, T + 1, T), (T, T + 1, T + 100)]) == (-2.0, 2.0)
