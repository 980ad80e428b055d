"""Sessions on the real server: plate checks, backend names, listing after a restart."""

from __future__ import annotations

import pytest

from tests.serverkit import (client, client_for, fake_backends, isolated_config, plate, root,  # noqa: F401
                             running_server, server, write_plate)

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


def test_a_restarted_server_lists_the_sessions_it_stored(tmp_path, root, isolated_config, fake_backends, plate):
    pattern, _ = plate
    other = write_plate(root / "second", name="other")[0]
    with running_server(tmp_path, [root]) as srv:
        c = client_for(srv)
        a = c.open_session(pattern, key="a", backend="fake")["session"]
        b = c.open_session(other, key="b", backend="fake")["session"]
        gone = c.open_session(other, key="c", backend="fake")["session"]
        c.close_session(gone)
        before = {s["session"]: s for s in c.sessions()["sessions"]}
        assert before[a]["loaded"] and not before[a]["closed"] and before[gone]["closed"]
    with running_server(tmp_path, [root]) as srv:  # a new server over the same state folder
        c = client_for(srv)
        listed = {s["session"]: s for s in c.sessions()["sessions"]}
        assert set(listed) == {a, b, gone}
        assert listed[a]["clip"] == before[a]["clip"] and listed[a]["key"] == "a"
        assert listed[b]["project"] == before[b]["project"] and not listed[b]["missing"]
        assert not listed[a]["loaded"] and not listed[a]["closed"] and listed[gone]["closed"]
        assert c.session(a)["session"] == a  # a listed session opens by its id
        assert {s["session"]: s for s in c.sessions()["sessions"]}[a]["loaded"]
