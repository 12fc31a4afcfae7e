"""An embedded MQTT 3.1.1 broker (amqtt) for the demo where Mosquitto cannot be installed.

Demo only: amqtt does not redeliver in-flight messages after a crash, so no
delivery guarantee is ever tested against it. Usage: amqtt_broker.py PORT
"""

from __future__ import annotations

import asyncio
import sys

from amqtt.broker import Broker


async def serve(port: int) -> None:
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
    )
    await broker.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
