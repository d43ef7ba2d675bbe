#!/usr/bin/env python3
"""Creates a Kinesis stream (if absent) and writes the quick start's two bad records to it: a
command whose time to live has passed and a record that is not a command. (`sauna send`, which
the quick start uses for the good commands, refuses both by design.) Uses boto3 from the
emulators' virtualenv; the endpoint comes from AWS_ENDPOINT_URL_KINESIS like every AWS SDK."""
import argparse
import datetime
import json
import time
import uuid

import boto3

p = argparse.ArgumentParser()
p.add_argument("--stream", required=True)
p.add_argument("--shards", type=int, default=2)
args = p.parse_args()

kinesis = boto3.client("kinesis", region_name="us-east-1")
try:
    kinesis.create_stream(StreamName=args.stream, ShardCount=args.shards)
except kinesis.exceptions.ResourceInUseException:
    pass
while kinesis.describe_stream_summary(StreamName=args.stream)["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
    time.sleep(0.05)


def command(schema, data, ttl=None, created=None):
    return json.dumps({
        "schema": "iglu:com.snowplowanalytics.sauna.commands/command/jsonschema/1-0-0",
        "data": {
            "envelope": {
                "schema": "iglu:com.snowplowanalytics.sauna.commands/envelope/jsonschema/1-0-0",
                "data": {
                    "commandId": str(uuid.uuid4()),
                    "whenCreated": created or datetime.datetime.now(datetime.timezone.utc).isoformat(),
                    "execution": {"semantics": "AT_LEAST_ONCE", "timeToLive": ttl},
                    "tags": {"source": "quickstart"},
                },
            },
            "command": {"schema": schema, "data": data},
        },
    })


SLACK = "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0"
records = [
    ("alerts", command(SLACK, {"channel": "#ops", "text": "This one expired before it was read"}, ttl=1000,
                       created="2017-01-02T19:14:42Z")),
    ("misc", "this record is not a command"),
]
kinesis.put_records(StreamName=args.stream,
                    Records=[{"PartitionKey": k, "Data": d.encode()} for k, d in records])
print(f"wrote {len(records)} records to stream {args.stream}: 1 expired command, 1 invalid record")
