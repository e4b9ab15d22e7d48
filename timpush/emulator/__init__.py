"""A local emulator of the Tencent Cloud IM scheduled push task API (``v4/timpush/*_sched_task``)."""

from timpush.emulator.faults import Fault
from timpush.emulator.server import Emulator
from timpush.emulator.settings import EmulatorSettings

__all__ = ["Emulator", "EmulatorSettings", "Fault"]
