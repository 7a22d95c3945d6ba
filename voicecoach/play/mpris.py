"""Media keys: an MPRIS player on the session D-Bus (headphone buttons, keyboard media keys, playerctl).

While a session plays, :class:`MediaKeys` owns ``org.mpris.MediaPlayer2.voicecoach`` at
``/org/mpris/MediaPlayer2`` (MPRIS 2.2).  PlayPause/Play/Pause, Next (the next step), Previous
(the step's start; twice quickly: the previous step) and Stop become the controller's actions
like any key; the properties tell a desktop what plays: Metadata (title = the step, album = the
routine, its length, the routine's cover as a file URL), PlaybackStatus and Position, and
PropertiesChanged is sent when the step or the pause state changes.

It talks D-Bus through jeepney (pure Python) on a thread of its own.  Without a session bus
the session plays on without media keys (:attr:`MediaKeys.unavailable` says why).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

from .controller import Action, Controller
from .status import TimelineIndex

BUS_NAME = "org.mpris.MediaPlayer2.voicecoach"
OBJECT_PATH = "/org/mpris/MediaPlayer2"
ROOT = "org.mpris.MediaPlayer2"
PLAYER = "org.mpris.MediaPlayer2.Player"
PROPERTIES = "org.freedesktop.DBus.Properties"
INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"

_METHODS: dict[str, Action] = {
    "PlayPause": Action.PLAY_PAUSE,
    "Play": Action.RESUME,
    "Pause": Action.PAUSE,
    "Next": Action.NEXT,
    "Previous": Action.BACK,
    "Stop": Action.QUIT,
}

_INTROSPECTION = """<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<node>
 <interface name="org.freedesktop.DBus.Introspectable">
  <method name="Introspect"><arg name="xml" type="s" direction="out"/></method>
 </interface>
 <interface name="org.freedesktop.DBus.Properties">
  <method name="Get"><arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="v" direction="out"/></method>
  <method name="GetAll"><arg type="s" direction="in"/><arg type="a{sv}" direction="out"/></method>
  <method name="Set"><arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="v" direction="in"/></method>
  <signal name="PropertiesChanged"><arg type="s"/><arg type="a{sv}"/><arg type="as"/></signal>
 </interface>
 <interface name="org.mpris.MediaPlayer2">
  <method name="Raise"/><method name="Quit"/>
  <property name="CanQuit" type="b" access="read"/><property name="CanRaise" type="b" access="read"/>
  <property name="HasTrackList" type="b" access="read"/><property name="Identity" type="s" access="read"/>
  <property name="SupportedUriSchemes" type="as" access="read"/>
  <property name="SupportedMimeTypes" type="as" access="read"/>
 </interface>
 <interface name="org.mpris.MediaPlayer2.Player">
  <method name="Next"/><method name="Previous"/><method name="Pause"/><method name="PlayPause"/>
  <method name="Stop"/><method name="Play"/>
  <method name="Seek"><arg type="x" direction="in"/></method>
  <method name="SetPosition"><arg type="o" direction="in"/><arg type="x" direction="in"/></method>
  <method name="OpenUri"><arg type="s" direction="in"/></method>
  <signal name="Seeked"><arg type="x"/></signal>
  <property name="PlaybackStatus" type="s" access="read"/><property name="Rate" type="d" access="read"/>
  <property name="Metadata" type="a{sv}" access="read"/><property name="Volume" type="d" access="read"/>
  <property name="Position" type="x" access="read"/><property name="MinimumRate" type="d" access="read"/>
  <property name="MaximumRate" type="d" access="read"/><property name="CanGoNext" type="b" access="read"/>
  <property name="CanGoPrevious" type="b" access="read"/><property name="CanPlay" type="b" access="read"/>
  <property name="CanPause" type="b" access="read"/><property name="CanSeek" type="b" access="read"/>
  <property name="CanControl" type="b" access="read"/>
 </interface>
</node>
"""


class MediaKeys:
    """The MPRIS input source.  ``cover_png``: the routine's cover (bytes), shared as a file URL."""

    name = "media"
    POLL_S = 0.05

    def __init__(self, *, cover_png: Callable[[], bytes] | None = None, bus: str = "SESSION",
                 report: Callable[[str], None] | None = None) -> None:
        self._cover_png = cover_png
        self._report = report
        self._bus = bus
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._connection = None
        self._folder: str | None = None
        self.art_url = ""
        self.unavailable: str | None = None
        """Why there are no media keys this session (no session bus, the name is taken), else ``None``."""

    # -- the input source ----------------------------------------------------------------

    def start(self, controller: Controller) -> None:
        self._open(controller)
        if self.unavailable and self._report is not None:
            self._report(f"media keys are off: {self.unavailable}")

    def _open(self, controller: Controller) -> None:
        try:
            from jeepney.bus_messages import message_bus
            from jeepney.io.blocking import open_dbus_connection
        except ImportError as error:
            self.unavailable = f"jeepney is not installed ({error})"
            return
        try:
            connection = open_dbus_connection(bus=self._bus)
        except (OSError, KeyError, ValueError, RuntimeError) as error:  # no bus address, refused, ...
            self.unavailable = f"no session D-Bus ({error or type(error).__name__})"
            return
        try:
            reply = connection.send_and_get_reply(message_bus.RequestName(BUS_NAME, 0x4), timeout=2)  # DO_NOT_QUEUE
            if reply.body[0] not in (1, 4):  # primary owner / already owner
                self.unavailable = f"{BUS_NAME} is taken by another player"
                connection.close()
                return
        except Exception as error:  # a bus that misbehaves must never stop playing
            self.unavailable = f"the session D-Bus refused {BUS_NAME} ({error})"
            connection.close()
            return
        self._connection = connection
        self._thread = threading.Thread(target=self._serve, args=(controller,), name="voicecoach-mpris", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def _share_cover(self) -> None:
        if self._cover_png is None:
            return
        try:
            data = self._cover_png()
            self._folder = tempfile.mkdtemp(prefix="voicecoach-cover-")
            path = Path(self._folder) / "cover.png"
            path.write_bytes(data)
            self.art_url = path.as_uri()
        except Exception:  # no cover is no reason not to play
            self.art_url = ""

    # -- D-Bus -----------------------------------------------------------------------------

    def _serve(self, controller: Controller) -> None:
        from jeepney import MessageType

        connection = self._connection
        player = controller.player
        self._share_cover()  # here, not in start: drawing it does not hold back the first sound
        last = self._snapshot(player)
        while not self._closing.is_set():
            try:
                message = connection.receive(timeout=self.POLL_S)
            except TimeoutError:
                message = None
            except (OSError, ValueError, EOFError):
                return  # the bus went away: play on without it
            if message is not None and message.header.message_type is MessageType.method_call:
                try:
                    self._answer(connection, message, controller)
                except (OSError, ValueError):
                    return
            now = self._snapshot(player)
            if now != last:
                changed = {name: value for name, value in self._player_properties(player).items()
                           if name in ("PlaybackStatus", "Metadata", "Volume", "CanGoNext", "CanGoPrevious")}
                try:
                    self._signal(connection, "PropertiesChanged", "sa{sv}as", (PLAYER, changed, []))
                except (OSError, ValueError):
                    return
                last = now

    @staticmethod
    def _snapshot(player) -> tuple[Any, ...]:
        state = player.state()
        return (player.current_step(), state.paused, state.ended or state.stopped, state.volume_percent,
                len(player.timeline.chapters))

    def _signal(self, connection, name: str, signature: str, body: tuple) -> None:
        from jeepney import DBusAddress, new_signal

        connection.send(new_signal(DBusAddress(OBJECT_PATH, interface=PROPERTIES), name, signature, body))

    def _answer(self, connection, message, controller: Controller) -> None:
        from jeepney import HeaderFields, new_error, new_method_return

        fields = message.header.fields
        interface = fields.get(HeaderFields.interface, "")
        member = fields.get(HeaderFields.member, "")
        player = controller.player
        if fields.get(HeaderFields.path) != OBJECT_PATH:
            connection.send(new_error(message, "org.freedesktop.DBus.Error.UnknownObject"))
            return
        if member in _METHODS and interface in (PLAYER, ""):
            connection.send(new_method_return(message))
            controller.apply(_METHODS[member], source=self.name)
            return
        if member in ("Seek", "SetPosition", "OpenUri", "Raise") and interface in (PLAYER, ROOT, ""):
            connection.send(new_method_return(message))  # CanSeek and CanRaise are false: nothing to do
            return
        if member == "Quit" and interface in (ROOT, ""):
            connection.send(new_method_return(message))
            controller.apply(Action.QUIT, source=self.name)
            return
        if member == "Introspect":
            connection.send(new_method_return(message, "s", (_INTROSPECTION,)))
            return
        if interface == PROPERTIES and member in ("Get", "GetAll"):
            wanted = message.body[0]
            values = self._properties(wanted, player)
            if values is None:
                connection.send(new_error(message, "org.freedesktop.DBus.Error.UnknownInterface", "s",
                                          (f"no interface {wanted}",)))
            elif member == "GetAll":
                connection.send(new_method_return(message, "a{sv}", (values,)))
            elif message.body[1] in values:
                connection.send(new_method_return(message, "v", (values[message.body[1]],)))
            else:
                connection.send(new_error(message, "org.freedesktop.DBus.Error.UnknownProperty", "s",
                                          (f"no property {message.body[1]}",)))
            return
        if interface == PROPERTIES and member == "Set":
            connection.send(new_error(message, "org.freedesktop.DBus.Error.PropertyReadOnly", "s",
                                      ("voicecoach's properties are read-only",)))
            return
        connection.send(new_error(message, "org.freedesktop.DBus.Error.UnknownMethod", "s",
                                  (f"no method {interface}.{member}",)))

    def _properties(self, interface: str, player) -> dict[str, tuple[str, Any]] | None:
        if interface == ROOT:
            return {
                "CanQuit": ("b", True), "CanRaise": ("b", False), "HasTrackList": ("b", False),
                "Identity": ("s", "voicecoach"), "SupportedUriSchemes": ("as", []), "SupportedMimeTypes": ("as", []),
            }
        if interface == PLAYER:
            return self._player_properties(player)
        return None

    def _player_properties(self, player) -> dict[str, tuple[str, Any]]:
        return player_properties(player, art_url=self.art_url)


def player_properties(player, *, art_url: str = "") -> dict[str, tuple[str, Any]]:
    """The ``org.mpris.MediaPlayer2.Player`` properties of a player now, as D-Bus variants."""
    state = player.state()
    timeline = player.timeline
    rate = timeline.sample_rate
    index = TimelineIndex(timeline, steps_total=player.steps_total)
    step = player.current_step()
    chapter = timeline.chapters[step]
    status = "Stopped" if state.ended or state.stopped else "Paused" if state.paused else "Playing"
    metadata: dict[str, tuple[str, Any]] = {
        "mpris:trackid": ("o", f"/org/voicecoach/step/{step + 1}"),
        "mpris:length": ("x", (chapter.end_sample - chapter.start_sample) * 1_000_000 // rate),
        "xesam:title": ("s", chapter.title),
        "xesam:album": ("s", timeline.routine),
        "xesam:trackNumber": ("i", step + 1),
    }
    if art_url:
        metadata["mpris:artUrl"] = ("s", art_url)
    position = max(0, min(state.position, chapter.end_sample) - chapter.start_sample)
    return {
        "PlaybackStatus": ("s", status),
        "Rate": ("d", 1.0), "MinimumRate": ("d", 1.0), "MaximumRate": ("d", 1.0),
        "Metadata": ("a{sv}", metadata),
        "Volume": ("d", state.volume_percent / 100),
        "Position": ("x", position * 1_000_000 // rate),
        "CanGoNext": ("b", step + 1 < index.steps_total), "CanGoPrevious": ("b", True),
        "CanPlay": ("b", True), "CanPause": ("b", True), "CanSeek": ("b", False), "CanControl": ("b", True),
    }
