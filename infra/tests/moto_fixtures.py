#!/usr/bin/env python3
"""Create, in moto, what a platform team would already have, and print it
as a Terraform -var-file (JSON) for an example:

    moto_fixtures.py vpc         a VPC with two private subnets   -> examples/vpc
    moto_fixtures.py existing    a KMS key, an alert topic, a pager topic,
                                 the two roles (under a path, with a
                                 boundary)                         -> examples/existing-resources
    moto_fixtures.py boundary    a permissions-boundary policy     -> examples/complete

Only ever against moto: refuses to run without AWS_ENDPOINT_URL.
"""

import json
import os
import sys

import boto3


def client(service, region=None):
    return boto3.client(
        service,
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region_name=region or os.environ.get("AWS_DEFAULT_REGION", "eu-west-1"),
    )


def trust(service):
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    })


def boundary(name):
    iam = client("iam")
    doc = {
        "Version": "2012-10-17",
        # What a platform boundary typically allows a workload: the services
        # the probe uses, nothing administrative.
        "Statement": [{
            "Effect": "Allow",
            "Action": ["secretsmanager:*", "cloudwatch:*", "sns:*", "dynamodb:*", "kms:*", "logs:*", "ec2:*", "sqs:*", "lambda:*"],
            "Resource": "*",
        }],
    }
    try:
        return iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(doc))["Policy"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        account = client("sts").get_caller_identity()["Account"]
        return f"arn:aws:iam::{account}:policy/{name}"


def vpc():
    ec2 = client("ec2")
    v = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    region = os.environ.get("AWS_DEFAULT_REGION", "eu-west-1")
    subnets = [
        ec2.create_subnet(VpcId=v, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{region}{az}")["Subnet"]["SubnetId"]
        for i, az in ((1, "a"), (2, "b"))
    ]
    return {"vpc_subnet_ids": subnets}


def existing():
    kms = client("kms")
    key = kms.create_key(Description="platform key (fixture)")["KeyMetadata"]["Arn"]
    sns = client("sns")
    topic = sns.create_topic(Name="platform-alerts", Attributes={"KmsMasterKeyId": key})["TopicArn"]
    pager = sns.create_topic(Name="platform-pager")["TopicArn"]
    iam = client("iam")
    b = boundary("platform-boundary")
    roles = {}
    for role, service in (("probe-fn", "lambda.amazonaws.com"), ("probe-scheduler", "scheduler.amazonaws.com")):
        roles[role] = iam.create_role(
            RoleName=role, Path="/platform/", AssumeRolePolicyDocument=trust(service), PermissionsBoundary=b,
        )["Role"]["Arn"]
    return {
        "kms_key_arn": key,
        "alert_topic_arn": topic,
        "pager_topic_arn": pager,
        "lambda_role_arn": roles["probe-fn"],
        "scheduler_role_arn": roles["probe-scheduler"],
    }


def main():
    if "AWS_ENDPOINT_URL" not in os.environ:
        sys.exit("AWS_ENDPOINT_URL must point at moto's server; refusing to touch real AWS")
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "vpc":
        out = vpc()
    elif what == "existing":
        out = existing()
    elif what == "boundary":
        out = {"role_permissions_boundary": boundary("probe-boundary")}
    else:
        sys.exit("usage: moto_fixtures.py vpc|existing|boundary")
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
