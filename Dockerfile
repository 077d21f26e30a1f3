# One image for every process; docker-compose.yml picks the process with `command`.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# Production dependencies only, and no test or bench code in the image.
RUN npm run build && npm prune --omit=dev && rm -rf dist/test dist/bench
# Every Lua script the processes read at run time, wherever it lives, so a new one is not forgotten.
RUN mkdir -p /tmp/lua && find auth-sidecar audit-worker -name '*.lua' -exec cp --parents {} /tmp/lua/ \;

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
# Read at run time: the gRPC contract, the Lua scripts (decision, anomaly rules), the example config.
COPY proto proto
COPY --from=build /tmp/lua/ ./
COPY config config
RUN mkdir -p data/spool data/audit && chown -R node:node data
USER node
CMD ["npm", "run", "start:gateway"]
