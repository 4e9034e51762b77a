# ts-kcm controller-manager image. Build: docker build -t ts-kcm .
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY lib lib
COPY controllers controllers
COPY scripts scripts
COPY test/bench test/bench
RUN npx tsc -p tsconfig.build.json

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /src/dist dist
# Numeric, so runAsNonRoot in manifests/deployment.yaml can verify it (the image's "node" user).
USER 1000:1000
EXPOSE 8080 8081
ENTRYPOINT ["node", "dist/controllers/main.js"]
CMD ["run"]
