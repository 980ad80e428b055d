"""Sessions on the real server: one key or project file never hands out another plate's session."""

from __future__ import annotations

import pytest

from tests.serverkit import (client, fake_backends, isolated_config, plate, root, server,  # noqa: F401
                             write_plate)

from engine.client import ServerError  # noqa: E402


def test_a_key_reused_on_another_plate_is_refused_while_its_session_is_open(server, client, plate, root):
    pattern, _ = plate
    other = write_plate(root / "second", name="other")[0]
    a = client.open_session(pattern, key="nuke:Root:RotoAI1", backend="fake")
    assert a["created"] and server.engine.sessions.get(a["session"])._session is not None  # loaded: the fast path
    with pytest.raises(ServerError) as err:
        client.open_session(other, key="nuke:Root:RotoAI1")
    e = err.value
    assert e.status == 400 and e.code == "session_error"
    assert "nuke:Root:RotoAI1" in e.text and str(root / "plate") in e.text and str(root / "second") in e.text
    assert "unique name" in e.text  # a hint the artist can act on in the host
    # the first plate's session is untouched and still reopens with its key
    again = client.open_session(pattern, key="nuke:Root:RotoAI1")
    assert again["session"] == a["session"] and not again["created"] and again["clip"] == a["clip"]
    # another key on the other plate is a session of its own
    b = client.open_session(other, key="nuke:Root:RotoAI1:other", backend="fake")
    assert b["created"] and b["session"] != a["session"]


def test_a_project_file_reused_on_another_plate_is_refused_while_its_session_is_open(server, client, plate, root):
    pattern, _ = plate
    other = write_plate(root / "second", name="other")[0]
    project = str(root / "shot.roto.json")
    a = client.open_session(pattern, project=project, backend="fake")
    with pytest.raises(ServerError) as err:
        client.open_session(other, project=project)
    assert err.value.code == "session_error" and "the session was made on" in err.value.text
    assert client.open_session(pattern, project=project)["session"] == a["session"]


def test_an_unknown_backend_is_refused_when_the_session_opens(server, client, plate):
    pattern, _ = plate
    with pytest.raises(ServerError) as err:
        client.open_session(pattern, key="typo", backend="nonesuch")
    e = err.value
    assert e.status == 422 and e.code == "invalid_request" and "nonesuch" in e.text
    assert "auto" in e.text and "classical" in e.text and "fake" in e.text  # the known backends are listed
    assert client.sessions()["sessions"] == []  # nothing was made or stored
    s = client.open_session(pattern, key="typo", backend="auto")
    assert s["created"] and s["backend"] == "auto"
    with pytest.raises(ServerError) as err:  # nor can an open session be switched to one
        client.open_session(pattern, key="typo", backend="nonesuch")
    assert err.value.code == "invalid_request"
    assert client.open_session(pattern, key="typo", backend="fake")["backend"] == "fake"
