module github.com/ts-kcm/ts-kcm/test/bench/go

go 1.25
