use super::*;

fn scope() -> Scope {
    Scope::new(
        "billmgr",
        "billmgr",
        ["billmgr", "other", "billmgr_bmo_stage"].map(String::from),
        ["sys_exec"].map(String::from),
        ["account", "item", "payment"].map(String::from),
    )
}

fn object<'a>(kind: DefinitionKind, name: &'a str, create: &'a str) -> Object<'a> {
    Object {
        kind,
        name,
        table: if kind == DefinitionKind::Trigger {
            "item"
        } else {
            ""
        },
        create,
        sql_mode: "STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION",
        definer: None,
    }
}

#[test]
fn real_tables_pass_and_are_rebuilt() {
    let create = "CREATE TABLE `item` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `account` int(11) NOT NULL,\n  `name` varchar(255) NOT NULL DEFAULT 'a;b',\n  `total` decimal(10,2) GENERATED ALWAYS AS (`price` * 2) VIRTUAL,\n  PRIMARY KEY (`id`),\n  KEY `account` (`account`),\n  CONSTRAINT `item_ibfk_1` FOREIGN KEY (`account`) REFERENCES `account` (`id`) ON DELETE CASCADE,\n  CONSTRAINT `c` CHECK (`account` > 0)\n) ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci COMMENT='services'\n PARTITION BY HASH (`id`) PARTITIONS 2";
    let out = table(&scope(), create, "item").unwrap();
    assert!(out.starts_with("CREATE TABLE `item` (\n  `id`"), "{out}");
    assert!(out.ends_with("PARTITIONS 2"), "{out}");
}

#[test]
fn hostile_tables_are_refused() {
    let s = scope();
    for (create, name) in [
        ("DROP TABLE billmgr.journal", "journal"),
        (
            "CREATE TABLE `journal` (a int); DROP TABLE `billmgr`.`journal`",
            "journal",
        ),
        ("CREATE TABLE `x` (a int)", "journal"),
        ("CREATE TABLE `other`.`journal` (a int)", "journal"),
        ("CREATE TABLE `journal` LIKE `other`.`t`", "journal"),
        (
            "CREATE TABLE `journal` (a int) SELECT * FROM `other`.`secret`",
            "journal",
        ),
        ("CREATE TABLE `journal` (a int) AS SELECT 1", "journal"),
        (
            "CREATE TABLE `journal` (a int) ENGINE=CONNECT TABLE_TYPE=DOS FILE_NAME='/etc/shadow'",
            "journal",
        ),
        (
            "CREATE TABLE `journal` (a int) ENGINE=FEDERATED CONNECTION='mysql://x@evil/db/t'",
            "journal",
        ),
        (
            "CREATE TABLE `journal` (a int) DATA DIRECTORY='/root'",
            "journal",
        ),
        (
            "CREATE TABLE `journal` (a int) ENGINE=MRG_MyISAM UNION=(`mysql`.`user`)",
            "journal",
        ),
        (
            "CREATE TABLE `journal` (a int, FOREIGN KEY (a) REFERENCES `other`.`t` (id))",
            "journal",
        ),
        (
            "CREATE TABLE `billmgrops_setting` (a int)",
            "billmgrops_setting",
        ),
        (
            "CREATE TABLE `journal` (a int DEFAULT (sys_exec('id')))",
            "journal",
        ),
        (
            "CREATE TABLE `journal` (a int) /*!50000 ; DROP TABLE x */",
            "journal",
        ),
        ("CREATE TABLE `journal` (a int", "journal"),
        ("CREATE TABLE `journal` (a int) COMMENT 'x", "journal"),
        ("CREATE TEMPORARY TABLE `journal` (a int)", "journal"),
        ("CREATE OR REPLACE TABLE `journal` (a int)", "journal"),
    ] {
        let e = table(&s, create, name).unwrap_err();
        assert!(matches!(e, DdlError::Refused(_)), "{create}: {e}");
    }
}

#[test]
fn real_definitions_pass_with_their_head_rebuilt() {
    let s = scope();
    let cases = [
        (
            DefinitionKind::View,
            "v_active",
            "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW `v_active` AS select `a`.`id` AS `id`,`i`.`name` AS `name` from (`account` `a` join `item` `i` on(`i`.`account` = `a`.`id`)) where `a`.`id` > 0 union select 1,'x'",
            "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW `v_active` AS select",
        ),
        (
            DefinitionKind::Trigger,
            "item_bi",
            "CREATE DEFINER=`billmgr`@`%` TRIGGER item_bi BEFORE INSERT ON item FOR EACH ROW BEGIN\n  IF NEW.name = '' THEN\n    SET NEW.name = CONCAT('item ', NEW.id); -- ok\n  END IF;\n  CASE WHEN NEW.id > 1 THEN SET @x = 1; ELSE SET @x = 2; END CASE;\n  WHILE @x < 3 DO SET @x = @x + 1; END WHILE;\nEND",
            "CREATE DEFINER=`billmgr`@`%` TRIGGER item_bi BEFORE INSERT ON item FOR EACH ROW BEGIN",
        ),
        (
            DefinitionKind::Procedure,
            "close_expired",
            "CREATE DEFINER=root@localhost PROCEDURE `close_expired`(IN days INT)\n    SQL SECURITY DEFINER\n    COMMENT 'кириллица; ok'\nlbl: BEGIN\n  DECLARE done INT DEFAULT 0;\n  REPEAT SET done = done + 1; UNTIL done > 3 END REPEAT;\n  UPDATE item SET status = 5 WHERE expiredate < NOW() - INTERVAL days DAY;\n  SELECT IF(done > 1, 'a', 'b') INTO @r;\nEND lbl",
            "CREATE DEFINER=`root`@`localhost` PROCEDURE `close_expired`(IN days INT)",
        ),
        (
            DefinitionKind::Function,
            "balance",
            "CREATE DEFINER=`root`@`localhost` FUNCTION `balance`(acc INT) RETURNS decimal(10,2)\n    READS SQL DATA\nBEGIN\n  DECLARE b DECIMAL(10,2);\n  SELECT SUM(amount) INTO b FROM payment WHERE account = acc;\n  RETURN COALESCE(b, 0);\nEND",
            "CREATE DEFINER=`root`@`localhost` FUNCTION `balance`(acc INT) RETURNS",
        ),
        (
            DefinitionKind::Event,
            "nightly",
            "CREATE DEFINER=`root`@`localhost` EVENT `nightly` ON SCHEDULE EVERY 1 DAY STARTS '2026-01-01 03:00:00' ON COMPLETION NOT PRESERVE ENABLE DO DELETE FROM `billmgr`.`item` WHERE id < 0",
            "CREATE DEFINER=`root`@`localhost` EVENT `nightly` ON SCHEDULE",
        ),
    ];
    for (kind, name, create, head) in cases {
        let out =
            definition(&s, &object(kind, name, create)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(out.starts_with(head), "{name}: {out}");
    }
}

#[test]
fn hostile_definitions_are_refused() {
    let s = scope();
    let cases = [
        (DefinitionKind::View, "v", "DROP TABLE `billmgr`.`journal`"),
        (DefinitionKind::View, "v", "CREATE VIEW `v` AS SELECT 1; DROP TABLE journal"),
        (DefinitionKind::View, "v", "CREATE VIEW `w` AS SELECT 1"),
        (DefinitionKind::View, "v", "CREATE TABLE `v` (a int)"),
        (DefinitionKind::View, "v", "CREATE VIEW `v` AS SELECT * FROM `mysql`.`user`"),
        (DefinitionKind::View, "v", "CREATE VIEW `v` AS SELECT * FROM other.t"),
        (DefinitionKind::View, "v", "CREATE VIEW `v` AS SELECT a FROM x.y.z"),
        (DefinitionKind::View, "v", "CREATE VIEW `v` AS SELECT * FROM billmgrops_storage_access"),
        (DefinitionKind::View, "v", "CREATE VIEW `v` AS SELECT LOAD_FILE('/etc/shadow')"),
        (DefinitionKind::View, "v", "CREATE VIEW `v` AS SELECT sys_exec('id')"),
        (DefinitionKind::View, "v", "CREATE VIEW `other`.`v` AS SELECT 1"),
        (DefinitionKind::Trigger, "t", "CREATE TRIGGER `billmgr`.`t` BEFORE INSERT ON `billmgr`.`billmgrops_setting` FOR EACH ROW SET @a = 1"),
        (DefinitionKind::Procedure, "p", "CREATE PROCEDURE `p`() BEGIN PREPARE s FROM @q; EXECUTE s; END"),
        (DefinitionKind::Procedure, "p", "CREATE PROCEDURE `p`() EXECUTE IMMEDIATE 'DROP DATABASE x'"),
        (DefinitionKind::Procedure, "p", "CREATE PROCEDURE `p`() BEGIN GRANT ALL ON *.* TO x; END"),
        (DefinitionKind::Procedure, "p", "CREATE PROCEDURE `p`() CREATE USER evil IDENTIFIED BY 'x'"),
        (DefinitionKind::Procedure, "p", "CREATE PROCEDURE `p`() DROP DATABASE other"),
        (DefinitionKind::Procedure, "p", "CREATE PROCEDURE `p`() SELECT 1 INTO OUTFILE '/etc/cron.d/x'"),
        (DefinitionKind::Procedure, "p", "CREATE PROCEDURE `p`() LOAD DATA INFILE '/etc/shadow' INTO TABLE item"),
        (DefinitionKind::Procedure, "p", "CREATE PROCEDURE `p`() SET GLOBAL general_log = 1"),
        (DefinitionKind::Procedure, "p", "CREATE PROCEDURE `p`() SET @@global.general_log_file = '/tmp/x'"),
        (DefinitionKind::Procedure, "p", "CREATE PROCEDURE `p`() SET PASSWORD = PASSWORD('x')"),
        (DefinitionKind::Procedure, "p", "CREATE PROCEDURE `p`() INSTALL SONAME 'ha_connect'"),
        (DefinitionKind::Procedure, "p", "CREATE PROCEDURE `p`() BEGIN CREATE TABLE t (a int) ENGINE=CONNECT; END"),
        (DefinitionKind::Procedure, "p", "CREATE PROCEDURE `p`() BEGIN SELECT 1; END; DROP TABLE journal"),
        (DefinitionKind::Procedure, "p", "CREATE PROCEDURE `p`() SELECT 1; DROP TABLE journal"),
        (DefinitionKind::Procedure, "p", "CREATE PROCEDURE `p`() /*!50000 GRANT ALL ON *.* TO x */ SELECT 1"),
        (DefinitionKind::Procedure, "p", "CREATE DEFINER=`root`@`localhost` PROCEDURE `p`() ALTER DEFINER=x EVENT e"),
        (DefinitionKind::Procedure, "p", "CREATE PROCEDURE `p`() CALL mysql.x()"),
        (DefinitionKind::Function, "f", "CREATE FUNCTION `f` RETURNS STRING SONAME 'lib_mysqludf_sys.so'"),
        (DefinitionKind::Event, "e", "CREATE EVENT `e` ON SCHEDULE EVERY 1 MINUTE DO UPDATE billmgrops_setting SET value = 'x'"),
        (DefinitionKind::Event, "e", "CREATE EVENT `e` ON SCHEDULE EVERY 1 MINUTE DO KILL 1"),
        (DefinitionKind::Trigger, "t", "CREATE TRIGGER `t` BEFORE INSERT ON `journal` FOR EACH ROW SET @a = 1"),
        (DefinitionKind::Trigger, "t", "CREATE TRIGGER `t` BEFORE INSERT ON `other`.`item` FOR EACH ROW SET @a = 1"),
        (DefinitionKind::Trigger, "t", "CREATE TRIGGER `t` BEFORE INSERT ON `item` FOR EACH ROW INSERT INTO other.log VALUES (1)"),
    ];
    for (kind, name, create) in cases {
        let e = definition(&s, &object(kind, name, create));
        assert!(
            matches!(e, Err(DdlError::Refused(_))),
            "accepted {create}: {e:?}"
        );
    }
}

#[test]
fn a_name_qualified_by_the_live_database_loses_its_qualifier() {
    let o = Object {
        kind: DefinitionKind::Trigger,
        name: "t",
        table: "item",
        create: "CREATE DEFINER=`root`@`localhost` TRIGGER `billmgr`.`t` after update ON billmgr.item FOR EACH ROW SET @a = 1",
        sql_mode: "",
        definer: None,
    };
    assert_eq!(
        definition(&scope(), &o).unwrap(),
        "CREATE DEFINER=`root`@`localhost` TRIGGER `t` after update ON item FOR EACH ROW SET @a = 1"
    );
    let mine = Object {
        definer: Some("CURRENT_USER"),
        ..o
    };
    assert!(definition(&scope(), &mine)
        .unwrap()
        .starts_with("CREATE DEFINER=CURRENT_USER TRIGGER `t`"));
}

#[test]
fn sql_modes_are_words() {
    assert!(sql_mode("STRICT_TRANS_TABLES,ANSI_QUOTES").is_ok());
    assert!(sql_mode("").is_ok());
    assert!(sql_mode("x'; DROP TABLE y; --").is_err());
}

#[test]
fn ansi_quotes_are_honoured() {
    let s = scope();
    let o = Object {
        kind: DefinitionKind::View,
        name: "v",
        table: "",
        create: "CREATE VIEW \"v\" AS SELECT \"id\" FROM \"account\"",
        sql_mode: "ANSI_QUOTES",
        definer: None,
    };
    let out = definition(&s, &o).unwrap();
    assert!(out.starts_with("CREATE VIEW \"v\" AS SELECT"), "{out}");
    let o = Object {
        create: "CREATE VIEW \"v\" AS SELECT * FROM \"mysql\".\"user\"",
        ..o
    };
    assert!(definition(&s, &o).is_err());
}

#[test]
fn collations_the_target_lacks_become_the_nearest_it_has_and_nothing_else_changes() {
    // As MySQL 8 writes a table, restored on MariaDB 10.11.
    let create = "CREATE TABLE `account` (\n  `id` int NOT NULL,\n  `name` varchar(20) COLLATE utf8mb4_0900_bin DEFAULT 'COLLATE utf8mb4_0900_ai_ci',\n  `note` text CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci";
    let mut s = scope();
    assert_eq!(
        table(&s, create, "account").unwrap(),
        create,
        "not read: kept"
    );
    s.collations = Some(
        [
            "utf8mb4_general_ci",
            "utf8mb4_bin",
            "utf8mb4_unicode_520_ci",
        ]
        .map(String::from)
        .into(),
    );
    assert_eq!(
        table(&s, create, "account").unwrap(),
        "CREATE TABLE `account` (\n  `id` int NOT NULL,\n  `name` varchar(20) COLLATE utf8mb4_bin DEFAULT 'COLLATE utf8mb4_0900_ai_ci',\n  `note` text CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_520_ci",
        "the words after COLLATE only, never inside a string"
    );
}
