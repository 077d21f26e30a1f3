# One image for every process; docker-compose.yml picks the process with `command`.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
# Read at run time: the gRPC contract, the Lua scripts (decision, anomaly detection), the example config.
COPY proto proto
COPY auth-sidecar/limiter/decide.lua auth-sidecar/limiter/decide.lua
COPY audit-worker/anomaly/detect.lua audit-worker/anomaly/detect.lua
COPY config config
RUN mkdir -p data/spool data/audit && chown -R node:node data
USER node
CMD ["npm", "run", "start:gateway"]
