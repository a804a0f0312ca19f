"""The `hashguard` command as people use it: each test runs the real CLI in a subprocess."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from service.media.hashes import hash_image_bytes
from tests.support import ServerProcess, add_key, encode, run_cli

# Starts servers, browsers or other programs: left out by `pytest -m 'not slow'`.
pytestmark = pytest.mark.slow

PHOTO = Image.fromarray(skimage.data.astronaut())


def test_keys_add_prints_key_last_and_stores_only_its_digest(tmp_path: Path) -> None:
    out = run_cli(
        "keys", "add", "--data-dir", str(tmp_path), "--role", "operator", "--name", "forum-a"
    )
    key = out.stdout.strip().splitlines()[-1]
    assert key.startswith("hg_") and len(key) > 40
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert key.encode() not in raw and key.split("_", 2)[2].encode() not in raw
    again = run_cli(
        "keys",
        "add",
        "--data-dir",
        str(tmp_path),
        "--role",
        "operator",
        "--name",
        "forum-a",
        check=False,
    )
    assert again.returncode == 2 and "already exists" in again.stderr
    bad_role = run_cli("keys", "add", "--data-dir", str(tmp_path), "--role", "root", check=False)
    assert bad_role.returncode == 2 and "invalid choice" in bad_role.stderr


def test_hash_submit_check_review_withdraw(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    PHOTO.save(photos / "a.png")
    Image.fromarray(skimage.data.chelsea()).save(photos / "b.jpg", quality=95)
    (photos / "notes.txt").write_text("not a photo")
    submission = tmp_path / "submission.json"
    hashed = run_cli(
        "hash",
        str(photos / "a.png"),
        str(photos / "b.jpg"),
        str(photos / "notes.txt"),
        "--out",
        str(submission),
        check=False,
    )
    assert hashed.returncode == 1 and "skipped" in hashed.stderr and "notes.txt" in hashed.stderr
    assert "hashed 2 of 3 files (1 skipped, named above)" in hashed.stderr
    assert "exit status 1: not every file was hashed" in hashed.stderr
    # tqdm's bar never shares a line with a message (tqdm.write prints above it).
    assert all(
        line.startswith(("skipped ", "hashed ", "exit status", "\r")) or "%|" in line
        for line in hashed.stderr.splitlines()
        if line.strip()
    ), hashed.stderr
    doc = json.loads(submission.read_text())
    assert [img["file"] for img in doc["images"]] == ["a.png", "b.jpg"]
    expected = hash_image_bytes((photos / "a.png").read_bytes())
    first = {h["algorithm"]: h for h in doc["images"][0]["hashes"]}
    assert first["pdq"]["hex"] == expected.pdq.hex and first["pdq"]["quality"] == 100
    assert set(first) == {"pdq", "phash", "sha256", "md5", "pdq-window"}  # service/media/crops.py

    data = tmp_path / "data"
    keys = {r: add_key(data, r, r) for r in ("operator", "moderator", "submitter")}
    server = ServerProcess(data).start()
    target = ("--target", server.target)
    try:
        submitted = run_cli("submit", str(submission), *target, "--key", keys["submitter"])
        lines = dict(line.split(":", 1) for line in submitted.stdout.strip().splitlines())
        case_id, token = lines["case id"].strip(), lines["case token"].strip()

        upload = tmp_path / "upload.jpg"
        upload.write_bytes(encode(PHOTO, "JPEG", quality=40))
        checked = run_cli(
            "check", str(upload), *target, "--key", keys["operator"], "--content-ref", "thread-9"
        )
        assert "decision: REVIEW" in checked.stdout and "hit: " in checked.stdout
        hit_id = checked.stdout.split("hit: ")[1].split()[0]
        # One file without --content-ref is recorded under its path, as several files are.
        upload2 = tmp_path / "upload-2.jpg"
        upload2.write_bytes(encode(PHOTO.resize((400, 400)), "JPEG", quality=60))
        run_cli("check", str(upload2), *target, "--key", keys["operator"])
        # An empty file is named as empty, not "set exactly one of 'image' and 'hashes'".
        empty = tmp_path / "empty.jpg"
        empty.write_bytes(b"")
        refused = run_cli("check", str(empty), *target, "--key", keys["operator"], check=False)
        assert refused.returncode == 2 and "empty.jpg is empty (0 bytes)" in refused.stderr

        listed = run_cli("hits", "list", *target, "--key", keys["moderator"])
        assert hit_id in listed.stdout and "thread-9" in listed.stdout
        assert f"ref={str(upload2)!r}" in listed.stdout
        # A unique prefix of the id is enough (the README shows ids shortened).
        resolved = run_cli(
            "hits",
            "resolve",
            hit_id[:8] + "…",
            "--confirm",
            "--note",
            "same photo",
            *target,
            "--key",
            keys["moderator"],
        )
        assert "CONFIRMED" in resolved.stdout
        assert (
            "decision: BLOCK"
            in run_cli("check", str(upload), *target, "--key", keys["operator"]).stdout
        )

        status = run_cli("case", "status", case_id, "--token", token, *target).stdout
        assert re.search(r"^state: +active$", status, re.M), status
        assert re.search(r"^hashes confirmed \(their copies are blocked\): +[1-9]", status, re.M)
        assert "CASE_STATE" not in status
        as_json = run_cli("case", "status", case_id, "--token", token, "--json", *target)
        assert json.loads(as_json.stdout)["state"] == "active"
        withdrawn = json.loads(
            run_cli("case", "withdraw", case_id, "--token", token, "--json", *target).stdout
        )
        assert withdrawn["state"] == "withdrawn"
        assert (
            "decision: ALLOW"
            in run_cli("check", str(upload), *target, "--key", keys["operator"]).stdout
        )

        # Several files go in one CheckUploadBatch; an unreadable one is named, not fatal.
        other = tmp_path / "other.png"
        other.write_bytes(encode(Image.fromarray(skimage.data.rocket()), "PNG"))
        broken = tmp_path / "broken.jpg"
        broken.write_bytes(b"not an image")
        several = run_cli(
            "check", str(upload), str(broken), str(other), *target, "--key", keys["operator"],
            check=False,
        )  # fmt: skip
        assert several.returncode == 1 and "1 of 3 files" in several.stderr
        blocks = several.stdout.split(f"{tmp_path}/")[1:]
        assert [b.split(":")[0] for b in blocks] == ["upload.jpg", "broken.jpg", "other.png"]
        assert "decision: ALLOW" in blocks[0] and "decision: ALLOW" in blocks[2]
        assert "error: " in blocks[1] and "not an image" in blocks[1]

        denied = run_cli("check", str(upload), *target, "--key", keys["moderator"], check=False)
        assert denied.returncode == 1 and "PERMISSION_DENIED" in denied.stderr
        missing = run_cli("check", str(upload), *target, check=False)
        assert missing.returncode == 2 and "--key" in missing.stderr
    finally:
        assert server.stop() == 0


def test_a_flat_photos_pdq_is_left_out_and_its_other_hashes_are_submitted(
    tmp_path: Path,
) -> None:
    """skimage's clock is too flat for PDQ (quality 34, under the service's 50): its PDQ
    would refuse the whole case, so `hash` leaves it out and says why, and the pHash,
    SHA-256 and MD5 it keeps are accepted and match a copy."""
    photo = tmp_path / "clock.png"
    Image.fromarray(skimage.data.clock()).save(photo)
    quality = hash_image_bytes(photo.read_bytes()).pdq.quality
    assert quality is not None and quality < 50
    submission = tmp_path / "submission.json"
    hashed = run_cli("hash", str(photo), "--out", str(submission))
    assert "clock.png: its pdq is left out: PDQ quality" in hashed.stderr
    (image,) = json.loads(submission.read_text())["images"]
    kept = {h["algorithm"] for h in image["hashes"]}
    assert "pdq" not in kept and {"phash", "sha256", "md5"} <= kept

    data = tmp_path / "data"
    keys = {r: add_key(data, r, r) for r in ("operator", "submitter")}
    server = ServerProcess(data).start()
    target = ("--target", server.target)
    try:
        submitted = run_cli("submit", str(submission), *target, "--key", keys["submitter"])
        assert "case id:" in submitted.stdout
        checked = run_cli("check", str(photo), *target, "--key", keys["operator"])
        assert "decision: REVIEW" in checked.stdout
    finally:
        server.stop()


def test_hash_opens_no_network_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`hashguard hash` computes locally: with every socket refused, it still works."""
    import socket

    from service.cli import main

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("hashguard hash tried to open a socket")

    PHOTO.save(tmp_path / "a.png")
    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert main(["hash", str(tmp_path / "a.png")]) == 0
    assert json.loads(capsys.readouterr().out)["images"][0]["file"] == "a.png"


def _random_list(n: int, seed: int = 7) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    sizes = {"pdq": 32, "phash": 8, "sha256": 32, "md5": 16}
    names = list(sizes)
    rows = []
    for i in range(n):
        name = names[i % 4]
        rows.append((name, rng.integers(0, 256, sizes[name], dtype=np.uint8).tobytes().hex()))
    return rows


def test_import_export_round_trip_plain_and_csv(tmp_path: Path) -> None:
    rows = _random_list(2000)
    plain = tmp_path / "list.txt"
    plain.write_text("# exported from a partner\n\n" + "".join(f"{a} {h}\n" for a, h in rows))
    data = tmp_path / "data"
    out = run_cli("import", str(plain), "--data-dir", str(data))
    assert "imported 2000 new entries (pending)" in out.stdout
    # Importing again adds nothing; --vetted vets what is there.
    again = run_cli("import", str(plain), "--data-dir", str(data), "--vetted")
    assert "imported 0 new entries" in again.stdout and "vetted 2000 existing" in again.stdout

    exported = tmp_path / "out.txt"
    run_cli("export", "--data-dir", str(data), "--out", str(exported), "--state", "vetted")
    assert sorted(exported.read_text().splitlines()) == sorted(f"{a} {h}" for a, h in rows)

    csv_path = tmp_path / "list.csv"
    extra = _random_list(10, seed=8)
    csv_path.write_text("signal_type,signal\n" + "".join(f"{a},{h}\n" for a, h in extra))
    run_cli("import", str(csv_path), "--data-dir", str(data))
    as_csv = tmp_path / "out.csv"
    run_cli(
        "export",
        "--data-dir",
        str(data),
        "--out",
        str(as_csv),
        "--format",
        "csv",
        "--state",
        "pending",
    )
    lines = as_csv.read_text().splitlines()
    assert lines[0] == "type,hash" and sorted(lines[1:]) == sorted(f"{a},{h}" for a, h in extra)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("pdq abcd\n", "line 2: pdq hash must be 32 bytes"),
        ("md5 " + "0" * 32 + "\nsha1 00\n", "line 3: unknown hash type 'sha1'"),
        ("pdq " + "zz" * 32 + "\n", "line 2: pdq hash"),
        ("justonefield\n", "line 2: expected '<type> <hex>'"),
    ],
)
def test_import_refuses_bad_lines_and_keeps_nothing(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("pdq " + "ab" * 32 + "\n" + content)
    data = tmp_path / "data"
    result = run_cli("import", str(path), "--data-dir", str(data), check=False)
    assert result.returncode == 2
    assert message in result.stderr
    with sqlite3.connect(data / "hashguard.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 0


def test_imported_vetted_list_blocks_after_server_start(tmp_path: Path) -> None:
    photo_hash = hash_image_bytes(encode(PHOTO, "PNG")).pdq.hex
    path = tmp_path / "list.txt"
    path.write_text(f"pdq {photo_hash}\n")
    data = tmp_path / "data"
    run_cli("import", str(path), "--data-dir", str(data), "--vetted")
    operator = add_key(data, "operator", "op")
    server = ServerProcess(data).start()
    try:
        upload = tmp_path / "up.jpg"
        upload.write_bytes(encode(PHOTO, "JPEG", quality=70))
        out = run_cli("check", str(upload), "--target", server.target, "--key", operator)
        assert "decision: BLOCK" in out.stdout
    finally:
        server.stop()


def test_import_of_a_large_list_is_fast_enough_to_report(tmp_path: Path) -> None:
    """200k lines import in one go; the timing is printed, not asserted."""
    rows = _random_list(200_000, seed=3)
    path = tmp_path / "big.txt"
    path.write_text("".join(f"{a} {h}\n" for a, h in rows))
    started = time.perf_counter()
    out = run_cli("import", str(path), "--data-dir", str(tmp_path / "data"))
    assert "imported 200000 new entries" in out.stdout
    print(f"imported 200k hashes in {time.perf_counter() - started:.1f}s")


def test_case_tokens_pass_as_command_line_values() -> None:
    """A token starting with '-' made `case status --token TOKEN` fail as a missing value."""
    from service.access.auth import new_case_token

    tokens = [new_case_token() for _ in range(5000)]  # 1 - (63/64)**5000: ~certain to see one
    assert not [t for t in tokens if t.startswith("-")]
    assert {t[0] for t in tokens} >= {"_", "A", "z", "0"}


def test_a_mistyped_flag_never_echoes_a_secret(tmp_path: Path) -> None:
    secret = "hg_op_" + "Xq8" * 12
    for args in (
        ("check", "x.jpg", "--keys", secret),
        ("check", "x.jpg", f"--keys={secret}"),
        ("hits", "list", "--state", secret),
        ("export", "--store", "postgresql://admin:hunter2@db/hashguard", "--bogus"),
    ):
        result = run_cli(*args, check=False)
        assert result.returncode == 2 and "error:" in result.stderr, args
        assert secret not in result.stderr and "hunter2" not in result.stderr, result.stderr
        assert "not shown" in result.stderr or "--bogus" in result.stderr
    # Flag names stay, so the mistake can still be seen.
    assert "--keys" in run_cli("check", "x.jpg", "--keys", secret, check=False).stderr


def test_a_mistyped_data_dir_is_refused_or_named_never_silently_new(tmp_path: Path) -> None:
    typo = tmp_path / "hashgaurd-data"
    for args in (("keys", "list"), ("export",), ("audit",)):
        result = run_cli(*args, "--data-dir", str(typo), check=False)
        assert result.returncode == 2 and "there is no HashGuard store" in result.stderr, args
    assert not typo.exists()
    made = run_cli("keys", "add", "--data-dir", str(typo), "--role", "operator", "--name", "a")
    assert "a new, empty one was made there" in made.stderr
    again = run_cli("keys", "add", "--data-dir", str(typo), "--role", "operator", "--name", "b")
    assert "new, empty" not in again.stderr


def test_submitting_a_photo_or_garbage_instead_of_the_json_says_what_to_do(
    tmp_path: Path,
) -> None:
    photo = tmp_path / "me.jpg"
    photo.write_bytes(encode(PHOTO, "JPEG"))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    for path, extra in ((photo, "this one is a photo: hash it first"), (text, "")):
        result = run_cli("submit", str(path), "--key", "hg_x", check=False)
        assert result.returncode == 2, result.stderr
        assert "is not a submission file" in result.stderr and extra in result.stderr
        assert "codec" not in result.stderr and "Traceback" not in result.stderr


def test_the_first_start_times_compiling_apart_from_loading(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "fresh").start()
    try:
        log = server.log()
    finally:
        server.stop()
    assert "no store in" in log and "starting with a new, empty one" in log
    assert "index search loops ready in" in log
    loaded = re.search(r"loaded the list in ([0-9.]+)s", log)
    assert loaded, log
