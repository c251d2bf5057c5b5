"""Starts each service of a rendered k8s overlay with exactly the environment
its Deployment gives it (ConfigMaps, Secrets, literal values; fieldRefs get a
stand-in) and fails if the service refuses its configuration: each service
rejects keys it does not know, so a key meant for another service must not
reach it. Usage: k8s-env-check.py RENDERED.yaml BIN_DIR"""
import os
import subprocess
import sys
import time

import yaml

rendered, bin_dir = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
data = {}
for d in docs:
    if d["kind"] == "ConfigMap":
        data[("ConfigMap", d["metadata"]["name"])] = d.get("data", {})
    elif d["kind"] == "Secret":
        data[("Secret", d["metadata"]["name"])] = d.get("stringData", {})

failures = 0
for d in docs:
    if d["kind"] != "Deployment":
        continue
    for c in d["spec"]["template"]["spec"]["containers"]:
        env = {"PATH": os.environ.get("PATH", "")}
        for source in c.get("envFrom", []):
            for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                if ref in source:
                    env.update(data[(kind, source[ref]["name"])])
        for var in c.get("env", []):
            env[var["name"]] = var.get("value", "stand-in")
        env["CHAT_LISTEN"] = "127.0.0.1:0"  # any free port, for this check only
        binary = os.path.join(bin_dir, c["command"][0])
        proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        code = proc.poll()
        if code is None:
            proc.terminate()
            proc.wait(timeout=10)
            print(f"k8s-env-check: {d['metadata']['name']}: starts with its environment ({len(env) - 1} variables)")
        else:
            failures += 1
            print(f"k8s-env-check: {d['metadata']['name']}: exited {code}: {proc.stderr.read().strip()}", file=sys.stderr)
sys.exit(1 if failures else 0)
