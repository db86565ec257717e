# Test-only: the airlock agent image plus the tools an attacker would bring (python with raw
# sockets, ping, ip, iptables, ps). It runs under exactly the same gate and hardening as any agent.
ARG AGENT_IMAGE
FROM ${AGENT_IMAGE}
USER root
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 iputils-ping iproute2 iptables procps \
 && rm -rf /var/lib/apt/lists/*
USER 10001:10001
ENTRYPOINT []
