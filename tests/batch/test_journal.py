import pytest

from chanjing_avatar.batch.journal import Journal, RowState, SpecChangedError
from chanjing_avatar.batch.manifest import load_manifest

VOICE = "a" * 32


@pytest.fixture
def manifest(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"v")
    m = tmp_path / "m.csv"
    m.write_text(f"id,video,text,voice\nr1,a.mp4,one,{VOICE}\nr2,a.mp4,two,{VOICE}\n")
    return m


def test_transitions_survive_reopen(tmp_path, manifest):
    man = load_manifest(manifest)
    path = tmp_path / "j.sqlite"
    with Journal(path) as j:
        j.sync_manifest(man)
        key = man.rows[0].video.key
        assert j.upload(key)["state"] == "pending"
        j.upload_intended(key)
        j.upload_done(key, "file1")
        assert j.file_ids(j.row("r1")) == ("file1", None)
        j.create_intended("r1", 100.0, {"x": 1})
        j.created("r1", "t1")
        j.create_intended("r2", 200.0, {"x": 2})
    with Journal(path) as j:
        j.sync_manifest(man)  # same manifest: nothing changes
        assert j.row("r1").state == RowState.CREATED
        r2 = j.row("r2")
        assert r2.state == RowState.INTENDED and r2.intent_at == 200.0 and r2.attempts == 1
        j.reconciled("r2", "adopted", task_id="t2", window=[199, 210])
        assert j.claimed_task_ids() == {"t1", "t2"}
        assert j.events("r2", "reconcile")[0]["detail"]["decision"] == "adopted"
        j.task_failed("r2", "t2", "余额不足", "billing")
        assert j.row("r2").state == RowState.FAILED
        assert j.retry_failed() == ["r2"]
        assert j.row("r2").state == RowState.PENDING
        assert "t2" in j.claimed_task_ids()  # old attempt stays claimed


def test_changed_row_after_create_is_refused(tmp_path, manifest):
    path = tmp_path / "j.sqlite"
    with Journal(path) as j:
        j.sync_manifest(load_manifest(manifest))
        j.create_intended("r1", 1.0, {})
    manifest.write_text(f"id,video,text,voice\nr1,a.mp4,CHANGED,{VOICE}\nr2,a.mp4,new,{VOICE}\n")
    with Journal(path) as j, pytest.raises(SpecChangedError) as ei:
        j.sync_manifest(load_manifest(manifest))
    assert ei.value.rows == ["r1"]  # r2 was never sent: changing it is fine


def test_upload_failure_fails_its_rows(tmp_path, manifest):
    man = load_manifest(manifest)
    with Journal(tmp_path / "j.sqlite") as j:
        j.sync_manifest(man)
        failed = j.upload_failed(man.rows[0].video.key, "content check failed")
        assert sorted(failed) == ["r1", "r2"]
        assert j.row("r1").error_kind == "upload"


def test_failed_row_may_be_fixed_before_retry(tmp_path, manifest):
    path = tmp_path / "j.sqlite"
    with Journal(path) as j:
        j.sync_manifest(load_manifest(manifest))
        j.create_intended("r1", 1.0, {})
        j.fail("r1", "create refused: unknown voice", "create")
    manifest.write_text(f"id,video,text,voice\nr1,a.mp4,fixed,{VOICE}\nr2,a.mp4,two,{VOICE}\n")
    with Journal(path) as j:
        j.sync_manifest(load_manifest(manifest))
        assert j.row("r1").spec["text"] == "fixed"
        assert j.retry_failed() == ["r1"]


def test_every_update_follows_the_transition_table(tmp_path, manifest):
    from chanjing_avatar.batch.journal import TRANSITIONS, JournalStateError

    # Every state has its arrows, and every arrow leads to a state.
    assert set(TRANSITIONS) == set(RowState)
    assert all(targets <= set(RowState) for targets in TRANSITIONS.values())
    with Journal(tmp_path / "j.sqlite") as j:
        j.sync_manifest(load_manifest(manifest))
        # A pending row has no task: nothing to download, nothing to call done.
        with pytest.raises(JournalStateError, match="no way from pending to downloading"):
            j.download_intended("r1", "x")
        with pytest.raises(JournalStateError):
            j.downloaded("r1", "x", 1, "0" * 64)
        assert j.row("r1").state == RowState.PENDING  # the refused update changed nothing
        j.create_intended("r1", 1.0, {})
        # A create already intended is not intended again before it is settled.
        with pytest.raises(JournalStateError, match="no way from intended to intended"):
            j.create_intended("r1", 2.0, {})
        j.created("r1", "t1")
        with pytest.raises(JournalStateError):
            j.reconciled("r1", "recreate")  # a row with its task is never created again
        j.task_succeeded("r1", "t1", None, 1000)
        j.task_succeeded("r1", "t-other", None, 1000)  # another task's news: ignored
        assert j.row("r1").state == RowState.SUCCEEDED
        j.download_intended("r1", "x")
        j.downloaded("r1", "x", 1, "0" * 64)
        with pytest.raises(JournalStateError):
            j.task_failed("r1", "t1", "late", "task")  # a done row does not fail afterwards
        assert j.row("r1").state == RowState.DONE
