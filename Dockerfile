# syntax=docker/dockerfile:1
# Two images from one file:
#   docker build --target control-plane -t edgefleet/control-plane .
#   docker build --target agent         -t edgefleet/agent .
# Both run the TypeScript sources with tsx (no build step), as the README's quick start does.

ARG NODE_IMAGE=node:20-bookworm-slim

# --- npm dependencies. Install scripts off, then only esbuild's and better-sqlite3's (which downloads a prebuilt addon
# from GitHub releases where it can, else compiles here); onnxruntime-node's CPU binaries ship in the package and its
# installer (a CUDA download) never runs. Same policy as scripts/install-node-deps.sh.
FROM ${NODE_IMAGE} AS deps
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
ENV ONNXRUNTIME_NODE_INSTALL=skip
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error \
 && JOBS=max npm rebuild better-sqlite3 esbuild --no-audit --no-fund --loglevel=error

# --- shared source layer
FROM ${NODE_IMAGE} AS source
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY bin ./bin
COPY shared ./shared
COPY device-profiles ./device-profiles
COPY agent ./agent
COPY control-plane ./control-plane

# --- control plane: HTTP API, embedded broker (or an external one), SQLite, the PyTorch trainer
FROM source AS control-plane
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends python3-torch python3-onnx python3-torchvision python3-numpy python3-pil dataset-fashion-mnist \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --uid 10001 edgefleet \
 && mkdir -p /var/lib/edgefleet && chown edgefleet /var/lib/edgefleet
USER edgefleet
ENV EDGEFLEET_DATA_DIR=/var/lib/edgefleet \
    EDGEFLEET_HTTP_HOST=0.0.0.0 \
    EDGEFLEET_MQTT_HOST=0.0.0.0 \
    EDGEFLEET_PYTHON=/usr/bin/python3
VOLUME ["/var/lib/edgefleet"]
EXPOSE 8080 1883
HEALTHCHECK CMD node -e "fetch('http://127.0.0.1:8080/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "bin/edgefleet-control-plane.mjs"]

# --- agent: probe, MQTT session, model store, onnxruntime benchmarks (no PyTorch)
FROM source AS agent
RUN useradd --system --create-home --uid 10001 edgefleet \
 && mkdir -p /var/lib/edgefleet-agent && chown edgefleet /var/lib/edgefleet-agent
USER edgefleet
ENV EDGEFLEET_STATE_DIR=/var/lib/edgefleet-agent
VOLUME ["/var/lib/edgefleet-agent"]
ENTRYPOINT ["node", "bin/edgefleet-agent.mjs", "run"]
