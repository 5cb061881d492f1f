"""Locust scenarios for any Triton deployment: ``locust -f loadtests/locustfile.py --host URL``.

They speak only HTTP and the websocket (nothing of the project is imported), as four kinds
of users (weights in brackets):

- ShopperUser (4): browses and searches the catalog, places orders; watches ``order.{id}``
  and cancels, timing the cancel's ``order.status_changed`` frame.
- ChatterUser (3): subscribes to a room, sends ``message.send`` with a ``client_msg_id``,
  times the ack and its own ``message.created``, and times the messages of others from the
  send time they carry (only meaningful when locust and the clocks are on one machine).
- DashboardUser (1, staff): on the ``dashboard`` topic; reads the dashboard and orders and
  moves pending orders to ``paid``, timing the ``order.status_changed`` frame it caused and
  the next ``dashboard.updated`` (an upper bound: the server coalesces to one a second).
- OfficeUser (2): tasks (times ``task.created`` on ``user.{id}``), mail to itself and a
  room mate (times ``mail.received``), file upload, list, download and delete.

Socket measurements are reported to locust as request type ``WS`` (connect, subscribe,
ack and ``event <name>``), so they appear in the UI, the stats and the CSV like HTTP ones.

Accounts come from ``manage.py seed_loadtest`` (see loadtests/README.md): either tokens from
its ``--tokens-out`` file (``--triton-tokens``) or a login with the seeded emails and
password (mind the target's per-address login limit, LOGIN_ADDRESS_RATE_LIMIT).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import gevent
import websocket
from gevent.event import AsyncResult
from locust import HttpUser, between, events, task
from locust.env import Environment
from locust.exception import StopUser

Frame = dict[str, Any]
EVENT_TIMEOUT = 10.0
WORDS = ("red", "blue", "green", "steel", "wooden", "small", "large", "classic", "modern", "eco")
# A minimal PDF: the server sniffs uploads and accepts application/pdf.
PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
_account_numbers = itertools.count()


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("Triton")
    group.add_argument(
        "--triton-tokens",
        default="",
        env_var="TRITON_TOKENS",
        help="JSON file written by manage.py seed_loadtest --tokens-out (no logins needed)",
    )
    group.add_argument(
        "--triton-accounts",
        type=int,
        default=200,
        env_var="TRITON_ACCOUNTS",
        help="how many seeded loadtest-<i>@example.com accounts to log in as (no tokens file)",
    )
    group.add_argument(
        "--triton-every-task-first",
        action="store_true",
        default=False,
        env_var="TRITON_EVERY_TASK_FIRST",
        help="each user runs each of its tasks once, in order, before the weighted random "
        "choice (short smoke runs: every request type shows up)",
    )
    group.add_argument(
        "--triton-password",
        default="loadtest-password-2026",
        env_var="TRITON_PASSWORD",
        help="the password given to seed_loadtest",
    )


def fire(
    environment: Environment,
    name: str,
    started: float,
    *,
    length: int = 0,
    exception: BaseException | None = None,
) -> None:
    """Report one socket measurement (seconds since ``started``, a perf_counter) to locust."""
    environment.events.request.fire(
        request_type="WS",
        name=name,
        response_time=(time.perf_counter() - started) * 1000,
        response_length=length,
        exception=exception,
        context={},
    )


class SocketError(Exception):
    pass


class TritonSocket:
    """One authenticated ``/ws/v1/`` connection. websocket-client is a blocking client, so
    under locust's gevent patching it cooperates; a greenlet reads frames and hands each one
    to whichever waiter matches it, or to the ``on_frame`` callback."""

    def __init__(
        self,
        environment: Environment,
        host: str,
        token: str,
        on_frame: Callable[[Frame], None] | None = None,
    ) -> None:
        parts = urlsplit(host)
        scheme = "wss" if parts.scheme == "https" else "ws"
        self.url = f"{scheme}://{parts.netloc}/ws/v1/"
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.environment = environment
        self.token = token
        self.on_frame = on_frame
        self.ws: websocket.WebSocket | None = None
        self.user_id: int | None = None
        self._waiters: list[tuple[Callable[[Frame], bool], AsyncResult]] = []
        self._reader: gevent.Greenlet | None = None
        self._ids = itertools.count(1)

    def connect(self) -> None:
        """Open and authenticate; reported as ``WS connect`` (TCP + upgrade + auth.ok)."""
        started = time.perf_counter()
        try:
            self.ws = websocket.create_connection(
                self.url, timeout=EVENT_TIMEOUT, origin=self.origin
            )
            self.ws.send(json.dumps({"type": "auth", "token": self.token}))
            reply = json.loads(self.ws.recv())
            if reply.get("type") != "auth.ok":
                raise SocketError(f"auth refused: {reply}")
            self.user_id = int(reply["user_id"])
            self.ws.settimeout(None)  # the reader blocks until a frame comes or the socket closes
        except Exception as exc:
            fire(self.environment, "connect", started, exception=exc)
            self.close()
            raise StopUser() from exc
        fire(self.environment, "connect", started)
        self._reader = gevent.spawn(self._read_loop)

    def _read_loop(self) -> None:
        assert self.ws is not None
        while True:
            try:
                raw = self.ws.recv()
            except Exception:
                break
            if not raw:
                break
            frame: Frame = json.loads(raw)
            for waiter in list(self._waiters):
                matches, result = waiter
                if matches(frame):
                    self._waiters.remove(waiter)
                    result.set(frame)
            if self.on_frame is not None:
                self.on_frame(frame)
        for _, result in self._waiters:
            result.set_exception(SocketError("socket closed"))
        self._waiters.clear()

    def expect(self, matches: Callable[[Frame], bool]) -> AsyncResult:
        """Register interest before the action that causes the frame (no race)."""
        result = AsyncResult()
        self._waiters.append((matches, result))
        return result

    def forget(self, result: AsyncResult) -> None:
        self._waiters = [w for w in self._waiters if w[1] is not result]

    def send(self, frame: Frame) -> None:
        if self.ws is None:
            raise SocketError("not connected")
        self.ws.send(json.dumps(frame))

    def subscribe(self, topic: str, name: str) -> bool:
        """Subscribe and wait for ``subscribed``; reported as ``WS subscribe <name>``."""
        frame_id = f"s{next(self._ids)}"
        reply = self.expect(lambda f: f.get("id") == frame_id)
        started = time.perf_counter()
        try:
            self.send({"type": "subscribe", "topic": topic, "id": frame_id})
            frame = reply.get(timeout=EVENT_TIMEOUT)
            if frame.get("type") != "subscribed":
                raise SocketError(f"subscribe {topic}: {frame}")
        except Exception as exc:
            self.forget(reply)
            fire(self.environment, f"subscribe {name}", started, exception=exc)
            return False
        fire(self.environment, f"subscribe {name}", started)
        return True

    def unsubscribe(self, topic: str) -> None:
        self.send({"type": "unsubscribe", "topic": topic})

    def wait(self, result: AsyncResult, name: str, started: float) -> Frame | None:
        """Wait for an expected frame; reported as ``WS <name>`` timed from ``started``."""
        try:
            frame: Frame = result.get(timeout=EVENT_TIMEOUT)
        except Exception as exc:
            self.forget(result)
            fire(self.environment, name, started, exception=exc)
            return None
        if frame.get("type") == "error":
            fire(self.environment, name, started, exception=SocketError(str(frame)))
            return None
        fire(self.environment, name, started, length=len(json.dumps(frame)))
        return frame

    def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):  # a broken socket may refuse to close
                self.ws.close()
        if self._reader is not None:
            self._reader.kill(block=False)


def event_on(topic: str, event: str, check: Callable[[Any], bool] | None = None) -> Callable:
    def matches(frame: Frame) -> bool:
        return (
            frame.get("type") == "event"
            and frame.get("topic") == topic
            and frame.get("event") == event
            and (check is None or check(frame.get("data")))
        )

    return matches


class TritonUser(HttpUser):
    """Common part: an account (token from the seed file, or a login) and one socket."""

    abstract = True
    wait_time = between(1, 3)
    staff = False
    _tokens_cache: dict[str, Any] | None = None

    token = ""
    user_id = 0
    socket: TritonSocket

    def on_start(self) -> None:
        self.token, self.user_id = self._account()
        self.client.headers["Authorization"] = f"Bearer {self.token}"
        self.socket = TritonSocket(self.environment, self.host or "", self.token, self.on_frame)
        self.socket.connect()
        self.start_socket()
        options = self.environment.parsed_options
        if options is not None and options.triton_every_task_first:
            # self.tasks repeats a task once per unit of its weight: each one once, in order.
            for task_function in dict.fromkeys(self.tasks):
                task_function(self)  # type: ignore[operator]

    def on_stop(self) -> None:
        if getattr(self, "socket", None) is not None:
            self.socket.close()

    def start_socket(self) -> None:
        """Subscriptions of this kind of user."""

    def on_frame(self, frame: Frame) -> None:
        """Frames nobody waits for."""

    def _tokens(self) -> dict[str, Any] | None:
        path = (
            self.environment.parsed_options.triton_tokens if self.environment.parsed_options else ""
        )
        if not path:
            return None
        if TritonUser._tokens_cache is None:
            with open(path) as fh:
                TritonUser._tokens_cache = json.load(fh)
        return TritonUser._tokens_cache

    def _account(self) -> tuple[str, int]:
        tokens = self._tokens()
        number = next(_account_numbers)
        if tokens is not None:
            users = _load_accounts(tokens)
            entry = tokens["staff"] if self.staff else users[number % len(users)]
            return entry["token"], int(entry["id"])
        options = self.environment.parsed_options
        accounts = options.triton_accounts if options else 200
        password = options.triton_password if options else ""
        email = (
            "loadtest-staff@example.com"
            if self.staff
            else f"loadtest-{number % accounts}@example.com"
        )
        with self.client.post(
            "/api/v1/auth/login",
            json={"email": email, "password": password, "device_name": "locust"},
            name="/auth/login",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"login {email}: {response.status_code} {response.text[:200]}")
                raise StopUser()
            body = response.json()
        return body["token"], int(body["user"]["id"])


class ShopperUser(TritonUser):
    weight = 4

    @task(4)
    def browse(self) -> None:
        self.client.get(
            f"/api/v1/products?limit=20&offset={random.randrange(0, 40)}",
            name="/products?offset",
        )

    @task(3)
    def search(self) -> None:
        self.client.get(f"/api/v1/products?search={random.choice(WORDS)}", name="/products?search")

    @task(2)
    def view_product(self) -> None:
        response = self.client.get("/api/v1/products?limit=50", name="/products")
        items = response.json().get("items", []) if response.ok else []
        if items:
            self.client.get(f"/api/v1/products/{random.choice(items)['id']}", name="/products/{id}")

    def _place_order(self) -> int | None:
        response = self.client.get("/api/v1/products?limit=50", name="/products")
        items = [p for p in (response.json().get("items", []) if response.ok else []) if p["stock"]]
        if not items:
            return None
        chosen = random.sample(items, k=min(len(items), random.randint(1, 3)))
        order = self.client.post(
            "/api/v1/orders",
            json={"items": [{"product_id": p["id"], "quantity": 1} for p in chosen]},
            name="/orders",
        )
        return int(order.json()["id"]) if order.status_code == 201 else None

    @task(1)
    def order_and_leave(self) -> None:
        """An order left pending: work for the staff users."""
        self._place_order()
        self.client.get("/api/v1/orders?limit=10", name="/orders (own)")

    @task(2)
    def order_watch_cancel(self) -> None:
        order_id = self._place_order()
        if order_id is None:
            return
        topic = f"order.{order_id}"
        if not self.socket.subscribe(topic, "order"):
            return
        changed = self.socket.expect(event_on(topic, "order.status_changed"))
        started = time.perf_counter()
        with self.client.post(
            f"/api/v1/orders/{order_id}/cancel", name="/orders/{id}/cancel", catch_response=True
        ) as response:
            if response.status_code == 409:
                # A staff user moved it first: an expected race, and that move's frame is
                # already on its way (it cannot be told apart from ours), so no sample.
                response.success()
                self.socket.forget(changed)
            elif response.ok:
                self.socket.wait(changed, "event order.status_changed", started)
            else:
                self.socket.forget(changed)
        self.socket.unsubscribe(topic)


class ChatterUser(TritonUser):
    weight = 3
    room_id = 0

    def start_socket(self) -> None:
        rooms = self.client.get("/api/v1/rooms?limit=100", name="/rooms").json().get("items", [])
        if not rooms:
            raise StopUser()
        self.room_id = int(random.choice(rooms)["id"])
        self.socket.subscribe(f"room.{self.room_id}", "room")
        self.client.get(
            f"/api/v1/rooms/{self.room_id}/messages?limit=20", name="/rooms/{id}/messages"
        )

    def on_frame(self, frame: Frame) -> None:
        if frame.get("event") != "message.created":
            return
        data = frame.get("data") or {}
        if data.get("sender_id") == self.user_id:
            return
        # Others' messages carry their send time: "lt <client_msg_id> <epoch seconds>".
        parts = str(data.get("body", "")).split()
        if len(parts) == 3 and parts[0] == "lt":
            latency = max(0.0, time.time() - float(parts[2]))
            self.environment.events.request.fire(
                request_type="WS",
                name="event message.created (others)",
                response_time=latency * 1000,
                response_length=len(json.dumps(frame)),
                exception=None,
                context={},
            )

    @task(5)
    def send(self) -> None:
        client_msg_id = str(uuid.uuid4())
        topic = f"room.{self.room_id}"
        ack = self.socket.expect(
            lambda f: f.get("type") in {"ack", "error"} and f.get("client_msg_id") == client_msg_id
        )
        own = self.socket.expect(
            event_on(topic, "message.created", lambda d: client_msg_id in str(d.get("body")))
        )
        started = time.perf_counter()
        self.socket.send(
            {
                "type": "message.send",
                "room_id": self.room_id,
                "body": f"lt {client_msg_id} {time.time():.6f}",
                "client_msg_id": client_msg_id,
            }
        )
        self.socket.wait(ack, "message.send ack", started)
        self.socket.wait(own, "event message.created (own)", started)

    @task(1)
    def history(self) -> None:
        self.client.get(
            f"/api/v1/rooms/{self.room_id}/messages?limit=20", name="/rooms/{id}/messages"
        )


class DashboardUser(TritonUser):
    weight = 1
    staff = True

    reserved_user_id = 0

    def start_socket(self) -> None:
        tokens = self._tokens()
        if tokens is not None and len(tokens["users"]) > 1:
            self.reserved_user_id = int(tokens["users"][-1]["id"])
        self.socket.subscribe("dashboard", "dashboard")

    @task(3)
    def dashboard(self) -> None:
        self.client.get("/api/v1/dashboard", name="/dashboard")

    @task(2)
    def pay_an_order(self) -> None:
        response = self.client.get("/api/v1/orders?status=pending&limit=50", name="/orders (all)")
        orders = [
            order
            for order in (response.json().get("items", []) if response.ok else [])
            if order["user_id"] != self.reserved_user_id
        ]
        if not orders:
            return
        order_id = int(random.choice(orders)["id"])
        topic = f"order.{order_id}"
        if not self.socket.subscribe(topic, "order"):
            return
        changed = self.socket.expect(event_on(topic, "order.status_changed"))
        dashboard = self.socket.expect(event_on("dashboard", "dashboard.updated"))
        started = time.perf_counter()
        with self.client.post(
            f"/api/v1/orders/{order_id}/status",
            json={"status": "paid"},
            name="/orders/{id}/status",
            catch_response=True,
        ) as result:
            moved = result.ok
            if result.status_code == 409:  # its owner cancelled it, or another staff paid it
                result.success()
        if moved:
            self.socket.wait(changed, "event order.status_changed (staff)", started)
            self.socket.wait(dashboard, "event dashboard.updated", started)
        else:
            self.socket.forget(changed)
            self.socket.forget(dashboard)
        self.socket.unsubscribe(topic)


class OfficeUser(TritonUser):
    weight = 2
    mate_ids: list[int]

    def start_socket(self) -> None:
        self.socket.subscribe(f"user.{self.user_id}", "user")
        rooms = self.client.get("/api/v1/rooms?limit=100", name="/rooms").json().get("items", [])
        self.mate_ids = sorted(
            {m for room in rooms for m in room["member_ids"] if m != self.user_id}
        )

    @task(3)
    def todo_list(self) -> None:
        topic = f"user.{self.user_id}"
        title = f"load test task {uuid.uuid4()}"
        created = self.socket.expect(
            event_on(topic, "task.created", lambda d: d.get("title") == title)
        )
        started = time.perf_counter()
        response = self.client.post("/api/v1/tasks", json={"title": title}, name="/tasks")
        if response.status_code != 201:
            self.socket.forget(created)
            return
        self.socket.wait(created, "event task.created", started)
        task_id = response.json()["id"]
        self.client.get("/api/v1/tasks?limit=20", name="/tasks")
        self.client.patch(f"/api/v1/tasks/{task_id}", json={"completed": True}, name="/tasks/{id}")
        self.client.delete(f"/api/v1/tasks/{task_id}", name="/tasks/{id}")

    @task(2)
    def mail(self) -> None:
        topic = f"user.{self.user_id}"
        subject = f"load test {uuid.uuid4()}"
        received = self.socket.expect(
            event_on(topic, "mail.received", lambda d: _mail_subject(d) == subject)
        )
        to = [self.user_id, *random.sample(self.mate_ids, k=min(1, len(self.mate_ids)))]
        started = time.perf_counter()
        response = self.client.post(
            "/api/v1/mails", json={"to": to, "subject": subject, "body": "<p>hi</p>"}, name="/mails"
        )
        if response.status_code != 201:
            self.socket.forget(received)
            return
        self.socket.wait(received, "event mail.received", started)
        self.client.get("/api/v1/mails?folder=inbox&limit=20", name="/mails?folder")
        self.client.get("/api/v1/mails/counts", name="/mails/counts")

    @task(1)
    def files(self) -> None:
        content = PDF_BYTES + uuid.uuid4().bytes
        response = self.client.post(
            "/api/v1/files",
            files={"file": ("report.pdf", content, "application/pdf")},
            name="/files (upload)",
        )
        if response.status_code != 201:
            return
        file_id = response.json()["id"]
        self.client.get("/api/v1/files?limit=20", name="/files")
        with self.client.get(
            f"/api/v1/files/{file_id}/download", name="/files/{id}/download", catch_response=True
        ) as download:
            if download.ok and download.content != content:
                download.failure("downloaded bytes differ from the upload")
        self.client.delete(f"/api/v1/files/{file_id}", name="/files/{id}")


def _mail_subject(data: Any) -> Any:
    """``mail.received`` carries the mail (and the counts); accept either nesting."""
    if not isinstance(data, dict):
        return None
    mail = data.get("mail", data)
    return mail.get("subject") if isinstance(mail, dict) else None


def _load_accounts(tokens: dict[str, Any]) -> list[dict[str, Any]]:
    """The accounts locust users take turns on. With more than one seeded account the last
    is left out: loadtests/e2e_status_push.py probes with it, and staff users leave its
    orders alone, so the probe's status moves never race the load's."""
    users: list[dict[str, Any]] = tokens["users"]
    return users[:-1] if len(users) > 1 else users
