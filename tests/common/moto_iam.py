"""Makes an IAM user with an access key allowed everything on a moto server, then a bucket holding
the given objects, written with that key; prints the key as JSON.

`python moto_iam.py ENDPOINT BUCKET KEY=TEXT...`. Start moto with `INITIAL_NO_AUTH_ACTION_COUNT=4`:
the four IAM calls below go through unchecked, and every request after them must be signed with a
key moto knows (it checks each signature with botocore's SigV4).
"""

import json
import sys

import boto3

endpoint, bucket, objects = sys.argv[1], sys.argv[2], sys.argv[3:]
anonymous = dict(endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **anonymous)
iam.create_user(UserName="content-sync")
key = iam.create_access_key(UserName="content-sync")["AccessKey"]
policy = iam.create_policy(PolicyName="everything", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
iam.attach_user_policy(UserName="content-sync", PolicyArn=policy["Policy"]["Arn"])

s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
s3.create_bucket(Bucket=bucket)
for item in objects:
    name, text = item.split("=", 1)
    s3.put_object(Bucket=bucket, Key=name, Body=text.encode())
print(json.dumps({"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}))
