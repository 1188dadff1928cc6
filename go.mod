module github.com/carbidedb/carbide

go 1.26

require (
	github.com/go-sql-driver/mysql v1.10.1
	gopkg.in/ini.v1 v1.67.3
)

require filippo.io/edwards25519 v1.2.0 // indirect
