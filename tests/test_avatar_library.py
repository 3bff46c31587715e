"""The avatar library in the service layer (no server process): the built-in portraits
with their metadata and thumbnails, an operator folder (a good photo with metadata, a photo
without a face skipped with the reason logged, changes and removals picked up), custom
avatars per account, the list filters and pages (on SQLite and on PostgreSQL), migration
0003 over a database made by 0002, and the command line (`facecast avatar ...`,
`facecast render --avatar`). The previews rendered in the background are tested with a
server in test_service_avatars.py."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from facecast.errors import NotFoundError
from facecast.service.assets import MediaSource
from facecast.service.core import Service
from facecast.service.settings import Settings


def grace_hopper() -> Path:
    from facecast.assets import asset_path

    return asset_path("grace_hopper.jpg")


@pytest.fixture()
def operator_dir(tmp_path: Path, astronaut_path: Path) -> Path:
    """A folder as an operator writes it: a subfolder with a photo and avatar.json, a bare
    image with a sidecar .json, a bare image without metadata, a photo without a face and
    a file that is no avatar at all."""
    root = tmp_path / "avatars"
    (root / "ada").mkdir(parents=True)
    (root / "ada" / "photo.jpg").write_bytes(grace_hopper().read_bytes())
    (root / "ada" / "avatar.json").write_text(json.dumps({
        "name": "Ada", "gender": "female", "age": "senior", "style": "casual",
        "region": "western", "tags": ["navy", "op"]}))
    mirrored = cv2.flip(cv2.imread(str(astronaut_path)), 1)
    cv2.imwrite(str(root / "mirror.png"), mirrored)
    (root / "mirror.json").write_text(json.dumps({"name": "Mirror", "gender": "male",
                                                  "style": "formal", "region": "asian"}))
    cv2.imwrite(str(root / "plain_face.jpg"), cv2.resize(mirrored, (400, 400)))
    cv2.imwrite(str(root / "blank.png"), np.full((500, 500, 3), 128, np.uint8))
    (root / "notes.txt").write_text("not an avatar")
    return root


def make_service(home: Path, **settings: object) -> Service:
    service = Service(Settings(home=home, avatar_previews=False, **settings),  # type: ignore[arg-type]
                      enqueue=lambda _job: None)
    service.bootstrap()
    return service


def names(rows: list) -> list[str]:
    return [r.name for r in rows]


def test_library_operator_folder_filters_pages_and_thumbnails(
        tmp_path: Path, operator_dir: Path, astronaut_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="facecast.avatars"):
        service = make_service(tmp_path / "home", avatar_dirs=str(operator_dir))
    avatars = service.avatars
    # the photo without a face is skipped, with its reason in the log
    assert any("blank.png" in r.message and "no_face" in r.message for r in caplog.records)
    rows, total = avatars.list(None, limit=50)
    assert names(rows) == ["Eileen Collins", "Grace Hopper", "Ada", "Mirror", "plain face"]
    assert total == 5
    eileen, hopper, ada, mirror, plain = rows
    assert (eileen.source, eileen.gender, eileen.age, eileen.style, eileen.region) == (
        "builtin", "female", "adult", "professional", "western")
    assert hopper.age == "senior" and hopper.account_id is None
    assert (ada.source, ada.gender, ada.age, ada.style, ada.region, ada.tags) == (
        "operator", "female", "senior", "casual", "western", ["navy", "op"])
    assert ada.face["accepted"] and mirror.gender == "male" and plain.gender is None
    assert all(r.preview_state == "pending" and r.preview_key is None for r in rows)

    # thumbnails: square JPEGs with the face in the middle
    from facecast.face import check_face

    for row in rows:
        thumb = tmp_path / f"thumb{row.id}.jpg"
        service.storage.get_to_path(row.thumbnail_key, thumb)
        assert thumb.read_bytes()[:3] == b"\xff\xd8\xff"
        verdict = check_face(str(thumb)).to_dict()
        assert verdict["image"] == {"width": 256, "height": 256}, verdict
        face = verdict["face"]
        assert abs(face["x"] + face["w"] / 2 - 128) < 40, (row.name, face)
        assert abs(face["y"] + face["h"] / 2 - 128) < 50, (row.name, face)

    # filters: each a column of real data; a list filter matches any of its values
    def count(**filters: object) -> int:
        return avatars.list(None, **filters)[1]  # type: ignore[arg-type]

    assert count(gender="male") == 1 and count(genders=["male", "female"]) == 4
    assert count(styles=["casual", "formal"]) == 2 and count(regions=["asian"]) == 1
    assert count(ages=["senior"]) == 2 and count(tag="navy") == 1 and count(tag="nav") == 0
    assert count(query="GRACE") == 1 and count(query="%") == 0 and count(kind="video") == 0
    assert count(source="operator") == 3 and count(custom=False) == 5
    assert count(custom=True) == 0

    # an account's own avatar: seen by it only, found by name or id
    b64 = base64.b64encode(astronaut_path.read_bytes()).decode()
    mine = avatars.create(1, MediaSource(base64=b64), "Me", "female", ["mine"],
                          style="casual", region="western", age="adult")
    assert mine.thumbnail_key and mine.source == "custom"
    assert avatars.list(1, custom=True)[1] == 1 and avatars.list(2, custom=True)[1] == 0
    assert avatars.list(1, styles=["casual"])[1] == 2
    assert avatars.list(2, styles=["casual"])[1] == 1
    assert avatars.find(1, "me").id == mine.id == avatars.find(1, f"av_{mine.id}").id
    with pytest.raises(NotFoundError):
        avatars.find(2, "me")

    # pages: stable order, the total on every page
    seen = []
    for page in range(3):
        part, total = avatars.list(1, offset=page * 2, limit=2)
        assert total == 6
        seen += names(part)
    assert seen == ["Eileen Collins", "Grace Hopper", "Ada", "Mirror", "plain face", "Me"]

    # a later start: unchanged entries are not checked again; changes are picked up
    (operator_dir / "plain_face.jpg").unlink()
    (operator_dir / "ada" / "avatar.json").write_text(json.dumps({"name": "Ada L",
                                                                   "gender": "female"}))
    counts = avatars.sync_folder(operator_dir)
    assert counts == {"added": 0, "updated": 1, "unchanged": 1, "skipped": 1, "removed": 1}
    assert names(avatars.list(None, source="operator")[0]) == ["Ada L", "Mirror"]
    assert avatars.get(None, ada.id).style is None  # metadata replaced as written
    service.db.dispose()


# ---- migration 0003 -------------------------------------------------------------------------


def upgrade_from_0002(url: str) -> list[tuple]:
    """A database made by revision 0002 with a built-in and a custom avatar in it, then
    brought to the newest revision as a start does."""
    from alembic import command
    from alembic.config import Config

    from facecast.service.db import MIGRATIONS, Database

    engine = create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO accounts (name, is_admin, balance, webhook_secret, "
                          "created_at) VALUES ('a', true, 0, 's', CURRENT_TIMESTAMP)"))
        for key in ("'eileen_collins'", "NULL"):
            conn.execute(text(
                "INSERT INTO avatars (account_id, name, kind, status, builtin_key, tags, "
                f"created_at) VALUES (NULL, 'x', 'photo', 'ready', {key}, '[]', "
                "CURRENT_TIMESTAMP)"))
    engine.dispose()
    db = Database(url)
    db.migrate()
    db.migrate()  # idempotent
    with db.engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        rows = conn.execute(text("SELECT builtin_key, source, style, thumbnail_key, job_id "
                                 "FROM avatars ORDER BY id")).all()
    db.dispose()
    from alembic.script import ScriptDirectory

    assert version == ScriptDirectory.from_config(cfg).get_current_head()  # 0003 and later
    return [tuple(r) for r in rows]


def test_migration_0003_on_sqlite(tmp_path: Path) -> None:
    rows = upgrade_from_0002(f"sqlite:///{tmp_path / 'old.db'}")
    assert rows == [("eileen_collins", "builtin", None, None, None),
                    (None, "custom", None, None, None)]


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    from scale_support import ServerMissing, postgres_cluster

    try:
        with postgres_cluster() as cluster:
            yield cluster.url.replace("postgresql://", "postgresql+psycopg://")
    except ServerMissing as exc:
        pytest.skip(str(exc))


def test_migration_0003_and_library_on_postgresql(postgres: str, tmp_path: Path,
                                                  operator_dir: Path) -> None:
    rows = upgrade_from_0002(postgres)
    assert rows == [("eileen_collins", "builtin", None, None, None),
                    (None, "custom", None, None, None)]
    # the older built-in row gets its metadata and thumbnail at the next start
    service = make_service(tmp_path / "home", database_url=postgres,
                           avatar_dirs=str(operator_dir))
    avatars = service.avatars
    eileen = avatars.get(None, 1)
    assert eileen.style == "professional" and eileen.thumbnail_key
    assert avatars.list(None, tag="navy")[1] == 1  # JSON tags matched on PostgreSQL too
    assert avatars.list(None, query="mirr", regions=["asian"])[1] == 1
    service.db.dispose()


# ---- the command line -----------------------------------------------------------------------


def cli(env: dict[str, str], *args: str) -> Any:
    """The command in this process (the imports once: a test of many commands stays quick);
    the first call of the test runs as a real process."""
    from facecast.cli import main

    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_cli_avatar_commands_and_render_with_an_avatar(tmp_path: Path, astronaut_path: Path,
                                                       operator_dir: Path) -> None:
    env = {**os.environ, "FACECAST_HOME": str(tmp_path / "home"),
           "FACECAST_AVATAR_DIRS": str(operator_dir)}
    listed = subprocess.run([sys.executable, "-m", "facecast.cli", "avatar", "list",
                             "--built-in", "--page-size", "3"], capture_output=True, text=True,
                            timeout=300, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "admin API key (shown once" in listed.stderr  # the library made the operator
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["av_1", "av_2", "av_3"]
    assert "(3 of 5)" in listed.stderr
    made = cli(env, "avatar", "create", "--photo", str(astronaut_path), "--name", "Me Too",
               "--gender", "female", "--style", "casual", "--tag", "cli")
    assert made.exit_code == 0, made.stderr
    found = re.match(r"created (av_\d+) \(Me Too\): photo avatar", made.stdout)
    assert found, made.stdout
    mine = json.loads(cli(env, "avatar", "list", "--custom", "--json").stdout)
    assert mine["total"] == 1 and mine["items"][0]["tags"] == ["cli"]
    assert mine["items"][0]["id"] == found.group(1)
    shown = json.loads(cli(env, "avatar", "show", "me too").stdout)
    assert shown["id"] == found.group(1) and shown["style"] == "casual"
    assert Path(shown["thumbnail_file"]).read_bytes()[:3] == b"\xff\xd8\xff"
    filtered = cli(env, "avatar", "list", "--gender", "male", "--region", "asian", "--json")
    assert [a["name"] for a in json.loads(filtered.stdout)["items"]] == ["Mirror"]

    out = tmp_path / "me.mp4"
    rendered = cli(env, "render", "--avatar", "Me Too", "--text", "Hello from the library.",
                   "-o", str(out), "--size", "256x256", "--no-progress")
    assert rendered.exit_code == 0, rendered.stderr
    with av.open(str(out)) as container:
        assert container.streams.video[0].width == 256 and container.streams.audio

    refused = cli(env, "avatar", "create", "--photo", str(operator_dir / "blank.png"),
                  "--name", "Nobody")
    assert refused.exit_code == 2 and "[no_face]" in refused.stderr
    assert cli(env, "avatar", "delete", "Grace Hopper").exit_code == 2
    assert cli(env, "render", "--avatar", "nobody", "--text", "Hi.", "-o",
               str(tmp_path / "x.mp4")).exit_code == 2
    deleted = cli(env, "avatar", "delete", found.group(1))
    assert deleted.exit_code == 0 and deleted.stdout.startswith(f"deleted {found.group(1)}")
    assert json.loads(cli(env, "avatar", "list", "--custom", "--json").stdout)["total"] == 0
