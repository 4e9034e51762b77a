# ts-kcm controller-manager image: docker build -t ts-kcm:0.1.0 .
# Without a container engine, `npm run image` builds the same layout (scripts/image.sh).
# Node 24 pinned by exact tag (the version of the `node` devDependency).
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY lib lib
COPY controllers controllers
COPY scripts scripts
COPY test/bench test/bench
RUN npx tsc -p tsconfig.build.json && find dist -name '*.test.js*' -delete

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && find node_modules \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \) -delete

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules node_modules
COPY --from=build /src/dist/lib dist/lib
COPY --from=build /src/dist/controllers dist/controllers
# Numeric, so the Deployment's runAsNonRoot can verify it (the base image's "node" user).
USER 1000:1000
EXPOSE 8443 8081
# The V8 flags of controllers/node-flags.ts: a smaller young generation and a heap that grows
# 50 % past what is live, not up to 4x (docs/benchmarks.md).
ENTRYPOINT ["node", "--max-semi-space-size=8", "--heap-growing-percent=50", "dist/controllers/main.js"]
CMD ["run"]
