"""The pages' modules in the real browser, fed with frames and messages the server could send."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Page

pytestmark = pytest.mark.e2e

# A stand-in for the browser's WebSocket: records what the client sends, lets the test
# play the server (deliver frames, close with a code).
FAKE_SOCKET = """() => {
window.__sockets = [];
class FakeSocket extends EventTarget {
  static OPEN = 1;
  constructor(url) {
    super();
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    window.__sockets.push(this);
    setTimeout(() => { this.readyState = 1; this.dispatchEvent(new Event("open")); }, 0);
  }
  send(text) { this.sent.push(JSON.parse(text)); }
  close(code = 1000) { this.serverClose(code); }
  serverSend(frame) { this.dispatchEvent(new MessageEvent("message", { data: JSON.stringify(frame) })); }
  serverClose(code) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    const event = new Event("close");
    event.code = code;
    this.dispatchEvent(event);
  }
}
window.WebSocket = FakeSocket;
}"""


@pytest.fixture
async def blank(base_url: str, open_page: Callable[..., Awaitable[Page]]) -> Page:
    """A page of the app's origin (so the modules load under its policy), with a fake socket."""
    page = await open_page(f"{base_url}/console")
    await page.evaluate(FAKE_SOCKET)
    return page


def message(seq: int, sender: str = "other", **extra: Any) -> dict[str, Any]:
    return {
        "id": 100 + seq,
        "seq": seq,
        "chat_id": "c1",
        "sender": {"id": sender, "display_name": sender.title(), "role": "user"},
        "text": f"message {seq}",
        "created_at": "2026-01-02T10:00:00+01:00",
        "client_msg_id": None,
        "kind": "text",
        **extra,
    }


async def test_the_socket_resumes_dedupes_heals_gaps_and_resends(blank: Page) -> None:
    result = await blank.evaluate(
        """async (messages) => {
        const { ChatSocket } = await import('/static/js/socket.js');
        const tick = (ms) => new Promise((r) => setTimeout(r, ms));
        const seen = [], states = [];
        let authFailed = 0;
        localStorage.removeItem('test.outbox');
        const socket = new ChatSocket({
          getToken: () => 'tok', getUserId: () => 'me', outboxKey: 'test.outbox',
          onEvent: (f) => { if (f.type === 'message') seen.push(f.message.seq); },
          onStatus: (s) => states.push(s), onAuthFailed: () => { authFailed += 1; },
        });
        socket.subscribe('c1');
        socket.start();
        await tick(20);
        let ws = window.__sockets.at(-1);
        const authFrame = ws.sent[0];
        ws.serverSend({ type: 'ready', user: { id: 'me' } });
        const subscribeFrame = ws.sent.at(-1);
        const entry = socket.send('c1', 'hello');
        const sentOnce = ws.sent.filter((f) => f.type === 'message').length;

        // Deliveries: 1, 3 (2 is missing), 1 again (a double).
        ws.serverSend({ type: 'message', message: messages[0] });
        ws.serverSend({ type: 'message', message: messages[2] });
        ws.serverSend({ type: 'message', message: messages[0] });
        await tick(2300);
        const healing = ws.sent.filter((f) => f.type === 'subscribe').at(-1);
        ws.serverSend({ type: 'message', message: messages[1] });
        ws.serverSend({ type: 'message', message: messages[2] });
        const afterHeal = socket.lastSeq('c1');

        // The server drops the slow reader: reconnect, resume after 3, resend "hello".
        ws.serverClose(1013);
        await tick(1200);
        const second = window.__sockets.at(-1);
        const reconnected = second !== ws;
        second.serverSend({ type: 'ready', user: { id: 'me' } });
        const resumed = second.sent.find((f) => f.type === 'subscribe');
        const resent = second.sent.find((f) => f.type === 'message');
        const stored = JSON.parse(localStorage.getItem('test.outbox')).length;
        second.serverSend({ type: 'ack', client_msg_id: entry.client_msg_id, message_id: 7, seq: 4 });
        const storedAfterAck = JSON.parse(localStorage.getItem('test.outbox')).length;

        // Typing is throttled.
        socket.sendTyping('c1'); socket.sendTyping('c1'); socket.sendTyping('c1');
        const typing = second.sent.filter((f) => f.type === 'typing').length;

        // A refused token stops reconnecting and asks to sign in.
        second.serverClose(4401);
        await tick(1500);
        const socketsAfter4401 = window.__sockets.length;
        socket.stop();
        return { authFrame, subscribeFrame, sentOnce, seen, healing, afterHeal, reconnected, resumed,
                 resent, entryId: entry.client_msg_id, stored, storedAfterAck, typing, authFailed,
                 socketsAfter4401, total: window.__sockets.length, states };
      }""",
        [message(1), message(2), message(3)],
    )
    assert result["authFrame"] == {"type": "auth", "token": "tok"}
    assert result["subscribeFrame"] == {"type": "subscribe", "chat_id": "c1", "after": 0}
    assert result["sentOnce"] == 1
    assert result["seen"] == [1, 3, 2], "each seq is delivered once"
    assert result["healing"] == {"type": "subscribe", "chat_id": "c1", "after": 1}
    assert result["afterHeal"] == 3
    assert result["reconnected"]
    assert result["resumed"] == {"type": "subscribe", "chat_id": "c1", "after": 3}
    assert result["resent"]["client_msg_id"] == result["entryId"]
    assert result["resent"]["text"] == "hello"
    assert result["stored"] == 1 and result["storedAfterAck"] == 0
    assert result["typing"] == 1
    assert result["authFailed"] == 1
    assert result["socketsAfter4401"] == result["total"], "no reconnect with a refused token"
    assert "reconnecting" in result["states"] and result["states"][-1] == "auth"


async def test_bot_sources_link_only_to_http_and_messages_sort_by_seq(blank: Page) -> None:
    bot = message(
        2,
        sender="bot",
        kind="bot",
        text="Returns are free within 30 days.",
        sources=[
            {"title": "Returns policy", "url": "https://example.com/returns"},
            {"title": "Evil", "url": "javascript:window.__pwned=1"},
            {"title": "Data", "url": "data:text/html,<script>window.__pwned=1</script>"},
            {"title": "<b>Offline manual</b>", "url": None},
        ],
    )
    result = await blank.evaluate(
        """async ([bot, first]) => {
        const { Transcript } = await import('/static/js/transcript.js');
        const list = document.createElement('ol');
        document.body.append(list);
        const transcript = new Transcript(list, () => 'me');
        const added = [transcript.add(bot), transcript.add(first), transcript.add(bot)];
        const links = [...list.querySelectorAll('a')]
          .map((a) => ({ href: a.href, rel: a.rel, text: a.textContent }));
        const sources = [...list.querySelectorAll('[data-testid=message-sources] li')]
          .map((li) => li.textContent);
        return { added, links, sources, order: [...list.children].map((li) => Number(li.dataset.seq)),
                 bold: list.querySelectorAll('b').length };
      }""",
        [bot, message(1)],
    )
    assert result["added"] == [True, True, False]
    assert result["order"] == [1, 2]
    assert result["links"] == [
        {
            "href": "https://example.com/returns",
            "rel": "noopener noreferrer nofollow",
            "text": "Returns policy",
        }
    ]
    assert result["sources"] == ["Returns policy", "Evil", "Data", "<b>Offline manual</b>"]
    assert result["bold"] == 0
    assert await blank.evaluate("typeof window.__pwned") == "undefined"
