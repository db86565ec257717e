"""Is refused by Mosquitto on purpose, as paho's defaults speak (MQTT 3.1.1, QoS 0): subscribes to a
topic outside its rights (the SUBACK says 0x80) and publishes to another (the broker says nothing),
then asks what was refused (airlock.denials()) and records it in /output."""
import json
import os
import threading
import time
from urllib.parse import unquote, urlparse

import airlock
from paho.mqtt.client import CallbackAPIVersion, Client

url = urlparse(os.environ["MQTT_URL"])
client = Client(CallbackAPIVersion.VERSION2, client_id=os.environ["MQTT_CLIENT_ID"])
client.username_pw_set(unquote(url.username), unquote(url.password))
acked = threading.Event()
codes = []


def on_subscribe(_client, _userdata, _mid, reason_codes, _properties):
    codes.extend(rc.value for rc in reason_codes)
    acked.set()


client.on_subscribe = on_subscribe
client.connect(url.hostname, url.port)
client.loop_start()
client.subscribe("rooms/secret/#")
acked.wait(10)
client.publish("rooms/other/chat", "hi").wait_for_publish(10)
time.sleep(0.2)
with open("/output/denials.json", "w") as f:
    json.dump({"subscribed": codes, "denials": airlock.denials()}, f)
client.loop_stop()
client.disconnect()
