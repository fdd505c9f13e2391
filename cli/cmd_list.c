/*
 * cartosync list [--type T] [--region R] [--province P] [--category C]
 *                [--owner O] [--status S] [--text TEXT]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/error.h"
#include "cartosync/map.h"
#include "cartosync/record.h"
#include "cli.h"

static const char usage[] =
	"usage: cartosync [-C DIR] list [--type TYPE] [--region CODE]"
	" [--province CODE]\n"
	"                 [--category CODE] [--owner ORG] [--status STATUS]"
	" [--text TEXT]\n\n"
	"List the records of main that match every filter given:\n"
	"  --type      organization, location, service, contact,"
	" referral_pathway,\n"
	"              referral_flow, need, staffcare_session\n"
	"  --region    an ISO 3166-2:MA region code (MA-04)\n"
	"  --province  an HCP province code (04.441)\n"
	"  --category  a service category code\n"
	"  --owner     an organisation code, or shared\n"
	"  --status    proposed, published or retired\n"
	"  --text      text anywhere in the record, any language, any case\n";

int
cmd_list(cli_ctx *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{"type", required_argument, NULL, 't'},
		{"region", required_argument, NULL, 'r'},
		{"province", required_argument, NULL, 'p'},
		{"category", required_argument, NULL, 'c'},
		{"owner", required_argument, NULL, 'o'},
		{"status", required_argument, NULL, 's'},
		{"text", required_argument, NULL, 'x'},
		{NULL, 0, NULL, 0},
	};
	cs_map_filter f;
	cs_node *node = NULL;
	json_t *records = NULL, *r;
	cs_oid head;
	size_t i;
	int c, error, status;

	if (cli_help_requested(argc, argv, usage))
		return EXIT_OK;
	memset(&f, 0, sizeof(f));
	optind = 1;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 't':
			f.type = optarg;
			break;
		case 'r':
			f.region = optarg;
			break;
		case 'p':
			f.province = optarg;
			break;
		case 'c':
			f.category = optarg;
			break;
		case 'o':
			f.owner = optarg;
			break;
		case 's':
			f.status = optarg;
			break;
		case 'x':
			f.text = optarg;
			break;
		default:
			return cli_usage(usage, NULL);
		}
	}
	if (optind != argc)
		return cli_usage(usage, "unexpected argument '%s'", argv[optind]);
	if (f.type && !cs_record_type_known(f.type))
		return cli_usage(usage, "\"%s\" is not a record type", f.type);
	if ((status = cli_open_node(cli, &node)) != 0)
		return status;
	if ((error = cli_main_head(node, &head)) < 0 ||
	    (error = cs_map_list(&records, cs_node_repo(node), &head, &f)) < 0) {
		status = cli_fail(error);
		goto done;
	}
	if (cli->json) {
		cli_print_json(records);
	} else {
		json_array_foreach(records, i, r) {
			const char *name =
				json_string_value(json_object_get(r, "name"));

			cli_say("%s  %-17s %-8s %-9s %s\n", cs_record_id(r),
				cs_record_type(r), cs_record_owner(r),
				json_string_value(json_object_get(r,
								  "x_status")),
				name ? name : "");
		}
		cli_say("%zu record%s\n", json_array_size(records),
			json_array_size(records) == 1 ? "" : "s");
	}
	status = EXIT_OK;
done:
	json_decref(records);
	cs_node_free(node);
	return status;
}
